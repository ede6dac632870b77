// SwiGLU forward and backward, fused (one pass each) and as eager PyTorch's separate passes, on
// row-major [rows, cols] views with their own row lengths. One grid-stride kernel template serves
// every operation: each thread owns a 16-byte vector (or, when the rows are not vector-aligned, one
// element) of every operand at the same (row, column), so outputs may alias inputs position for
// position. The double-precision host versions beside them are the references.
#include <cmath>

#include "dtype_dispatch.cuh"
#include "elementwise_vector.cuh"
#include "swiglu.cuh"

namespace wflops::kernels {

namespace {

enum class Op { silu, multiply, silu_backward, swiglu, swiglu_backward };

// Operand counts: silu 1 -> 1, multiply and silu_backward 2 -> 1, swiglu (g, u) -> a,
// swiglu_backward (da, g, u) -> (dg, du).
template <Op O>
constexpr int kInputs = O == Op::silu ? 1 : O == Op::swiglu_backward ? 3 : 2;
template <Op O>
constexpr int kOutputs = O == Op::swiglu_backward ? 2 : 1;

// Up to three input and two output [rows, cols] views, each with its row length in elements.
struct Operands {
  const void* in[3] = {nullptr, nullptr, nullptr};
  std::size_t in_ld[3] = {0, 0, 0};
  void* out[2] = {nullptr, nullptr};
  std::size_t out_ld[2] = {0, 0};
};

template <typename T>
struct Views {
  const T* in[3];
  std::size_t in_ld[3];
  T* out[2];
  std::size_t out_ld[2];
};

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

template <Op O>
__device__ __forceinline__ void apply(const float (&x)[3], float (&y)[2]) {
  if constexpr (O == Op::silu) {
    y[0] = x[0] * sigmoid(x[0]);
  } else if constexpr (O == Op::multiply) {
    y[0] = x[0] * x[1];
  } else if constexpr (O == Op::silu_backward) {  // x = (dout, pre)
    const float s = sigmoid(x[1]);
    y[0] = x[0] * s * (1.0f + x[1] * (1.0f - s));
  } else if constexpr (O == Op::swiglu) {  // x = (g, u)
    y[0] = x[0] * sigmoid(x[0]) * x[1];
  } else {  // swiglu_backward, x = (da, g, u): one sigmoid serves both gradients
    const float s = sigmoid(x[1]);
    y[0] = x[0] * x[2] * s * (1.0f + x[1] * (1.0f - s));
    y[1] = x[0] * x[1] * s;
  }
}

template <typename T, Op O>
__global__ void rowwise_kernel(Views<T> p, std::size_t rows, std::size_t cols, bool vectorised) {
  constexpr int W = vec::kWidth<T>, NI = kInputs<O>, NO = kOutputs<O>;
  const std::size_t tid = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  if (vectorised) {
    const std::size_t per_row = cols / W, n = rows * per_row;
    for (std::size_t v = tid; v < n; v += stride) {
      const std::size_t r = v / per_row, c = (v - r * per_row) * W;
      float x[NI][W], y[NO][W];
#pragma unroll
      for (int i = 0; i < NI; ++i) vec::load<W>(p.in[i] + r * p.in_ld[i] + c, x[i]);
#pragma unroll
      for (int j = 0; j < W; ++j) {
        float xe[3] = {0.0f, 0.0f, 0.0f}, ye[2] = {0.0f, 0.0f};
#pragma unroll
        for (int i = 0; i < NI; ++i) xe[i] = x[i][j];
        apply<O>(xe, ye);
#pragma unroll
        for (int o = 0; o < NO; ++o) y[o][j] = ye[o];
      }
#pragma unroll
      for (int o = 0; o < NO; ++o) vec::store<W>(p.out[o] + r * p.out_ld[o] + c, y[o]);
    }
    return;
  }
  const std::size_t n = rows * cols;
  for (std::size_t e = tid; e < n; e += stride) {
    const std::size_t r = e / cols, c = e - r * cols;
    float xe[3] = {0.0f, 0.0f, 0.0f}, ye[2] = {0.0f, 0.0f};
#pragma unroll
    for (int i = 0; i < NI; ++i) xe[i] = vec::to_float(p.in[i][r * p.in_ld[i] + c]);
    apply<O>(xe, ye);
#pragma unroll
    for (int o = 0; o < NO; ++o) p.out[o][r * p.out_ld[o] + c] = vec::from_float<T>(ye[o]);
  }
}

// Checks the operands (non-null, rows at least cols long), picks the vector path when every row of
// every operand starts 16-byte aligned, and launches.
template <typename T, Op O>
cudaError_t launch(const Operands& ops, std::size_t rows, std::size_t cols, cudaStream_t stream) {
  constexpr int W = vec::kWidth<T>;
  if (rows == 0 || cols == 0) return cudaSuccess;
  Views<T> p{};
  bool vectorised = cols % W == 0;
  for (int i = 0; i < kInputs<O>; ++i) {
    if (ops.in[i] == nullptr || ops.in_ld[i] < cols) return cudaErrorInvalidValue;
    p.in[i] = static_cast<const T*>(ops.in[i]);
    p.in_ld[i] = ops.in_ld[i];
    vectorised = vectorised && vec::aligned16(ops.in[i]) && ops.in_ld[i] % W == 0;
  }
  for (int o = 0; o < kOutputs<O>; ++o) {
    if (ops.out[o] == nullptr || ops.out_ld[o] < cols) return cudaErrorInvalidValue;
    p.out[o] = static_cast<T*>(ops.out[o]);
    p.out_ld[o] = ops.out_ld[o];
    vectorised = vectorised && vec::aligned16(ops.out[o]) && ops.out_ld[o] % W == 0;
  }
  const std::size_t items = vectorised ? rows * (cols / W) : rows * cols;
  rowwise_kernel<T, O><<<vec::blocks_for(items), vec::kThreads, 0, stream>>>(p, rows, cols, vectorised);
  return cudaGetLastError();
}

template <Op O>
cudaError_t run(DType dtype, const Operands& ops, std::size_t rows, std::size_t cols, cudaStream_t stream) {
  return dispatch_float_types(dtype, [&](auto tag) {
    return launch<typename decltype(tag)::type, O>(ops, rows, cols, stream);
  });
}

// Element offset `elements` into a buffer of `dtype` (the up half of gu starts ff elements in).
const void* offset(DType dtype, const void* p, std::size_t elements) {
  return p ? static_cast<const char*>(p) + elements * dtype_bytes(dtype) : nullptr;
}
void* offset(DType dtype, void* p, std::size_t elements) {
  return p ? static_cast<char*>(p) + elements * dtype_bytes(dtype) : nullptr;
}

}  // namespace

cudaError_t swiglu_forward(DType dtype, const void* gu, void* a, std::size_t tokens, std::size_t ff,
                           cudaStream_t stream) {
  Operands ops;
  ops.in[0] = gu;
  ops.in[1] = offset(dtype, gu, ff);
  ops.in_ld[0] = ops.in_ld[1] = 2 * ff;
  ops.out[0] = a;
  ops.out_ld[0] = ff;
  return run<Op::swiglu>(dtype, ops, tokens, ff, stream);
}

cudaError_t swiglu_backward(DType dtype, const void* da, const void* gu, void* dgu, std::size_t tokens,
                            std::size_t ff, cudaStream_t stream) {
  if (da != nullptr && da == dgu) return cudaErrorInvalidValue;
  Operands ops;
  ops.in[0] = da;
  ops.in_ld[0] = ff;
  ops.in[1] = gu;
  ops.in[2] = offset(dtype, gu, ff);
  ops.in_ld[1] = ops.in_ld[2] = 2 * ff;
  ops.out[0] = dgu;
  ops.out[1] = offset(dtype, dgu, ff);
  ops.out_ld[0] = ops.out_ld[1] = 2 * ff;
  return run<Op::swiglu_backward>(dtype, ops, tokens, ff, stream);
}

cudaError_t silu_forward_2d(DType dtype, const void* in, std::size_t in_ld, void* out, std::size_t out_ld,
                            std::size_t rows, std::size_t cols, cudaStream_t stream) {
  Operands ops;
  ops.in[0] = in;
  ops.in_ld[0] = in_ld;
  ops.out[0] = out;
  ops.out_ld[0] = out_ld;
  return run<Op::silu>(dtype, ops, rows, cols, stream);
}

cudaError_t multiply_2d(DType dtype, const void* a, std::size_t a_ld, const void* b, std::size_t b_ld,
                        void* out, std::size_t out_ld, std::size_t rows, std::size_t cols,
                        cudaStream_t stream) {
  Operands ops;
  ops.in[0] = a;
  ops.in_ld[0] = a_ld;
  ops.in[1] = b;
  ops.in_ld[1] = b_ld;
  ops.out[0] = out;
  ops.out_ld[0] = out_ld;
  return run<Op::multiply>(dtype, ops, rows, cols, stream);
}

cudaError_t silu_backward_2d(DType dtype, const void* dout, std::size_t dout_ld, const void* pre,
                             std::size_t pre_ld, void* din, std::size_t din_ld, std::size_t rows,
                             std::size_t cols, cudaStream_t stream) {
  Operands ops;
  ops.in[0] = dout;
  ops.in_ld[0] = dout_ld;
  ops.in[1] = pre;
  ops.in_ld[1] = pre_ld;
  ops.out[0] = din;
  ops.out_ld[0] = din_ld;
  return run<Op::silu_backward>(dtype, ops, rows, cols, stream);
}

double silu_host(double x) { return x / (1.0 + std::exp(-x)); }

double silu_derivative_host(double x) {
  const double s = 1.0 / (1.0 + std::exp(-x));
  return s * (1.0 + x * (1.0 - s));
}

double swiglu_host(double g, double u) { return silu_host(g) * u; }

void swiglu_backward_host(double da, double g, double u, double& dg, double& du) {
  dg = da * u * silu_derivative_host(g);
  du = da * silu_host(g);
}

}  // namespace wflops::kernels
