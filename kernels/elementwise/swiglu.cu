// SwiGLU forward and backward, fused (one pass each) and as eager PyTorch's separate passes, on
// row-major [rows, cols] views with their own row lengths. Every operation is a functor of the one
// elementwise loop (elementwise_vector.cuh): each thread owns a 16-byte vector (or, when the rows are
// not vector-aligned, one element) of every operand at the same (row, column), so outputs may alias
// inputs position for position. The double-precision host versions beside them are the references.
#include <cmath>

#include "common/dtype_dispatch.cuh"
#include "common/elementwise_vector.cuh"
#include "elementwise/swiglu.cuh"

namespace wflops::kernels {

namespace {

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

struct Silu {
  __device__ void operator()(const float (&x)[1], float (&y)[1]) const { y[0] = x[0] * sigmoid(x[0]); }
};

struct Multiply {
  __device__ void operator()(const float (&x)[2], float (&y)[1]) const { y[0] = x[0] * x[1]; }
};

struct SiluBackward {  // x = (dout, pre)
  __device__ void operator()(const float (&x)[2], float (&y)[1]) const {
    const float s = sigmoid(x[1]);
    y[0] = x[0] * s * (1.0f + x[1] * (1.0f - s));
  }
};

struct Swiglu {  // x = (g, u)
  __device__ void operator()(const float (&x)[2], float (&y)[1]) const { y[0] = x[0] * sigmoid(x[0]) * x[1]; }
};

struct SwigluBackward {  // x = (da, g, u), y = (dg, du): one sigmoid serves both gradients
  __device__ void operator()(const float (&x)[3], float (&y)[2]) const {
    const float s = sigmoid(x[1]);
    y[0] = x[0] * x[2] * s * (1.0f + x[1] * (1.0f - s));
    y[1] = x[0] * x[1] * s;
  }
};

// Refuses an unsupported dtype, then a null operand or a row shorter than cols, and launches.
template <typename Op, int NI, int NO>
cudaError_t run(DType dtype, const vec::Operands<NI, NO>& ops, std::size_t rows, std::size_t cols,
                cudaStream_t stream) {
  return dispatch_float_types(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (rows == 0 || cols == 0) return cudaSuccess;
    for (int i = 0; i < NI; ++i)
      if (ops.in[i] == nullptr || ops.in_ld[i] < cols) return cudaErrorInvalidValue;
    for (int o = 0; o < NO; ++o)
      if (ops.out[o] == nullptr || ops.out_ld[o] < cols) return cudaErrorInvalidValue;
    return vec::launch_elementwise<Op, T, T>(ops, rows, cols, stream);
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
  const vec::Operands<2, 1> ops{{gu, offset(dtype, gu, ff)}, {2 * ff, 2 * ff}, {a}, {ff}};
  return run<Swiglu>(dtype, ops, tokens, ff, stream);
}

cudaError_t swiglu_backward(DType dtype, const void* da, const void* gu, void* dgu, std::size_t tokens, std::size_t ff,
                            cudaStream_t stream) {
  if (da != nullptr && da == dgu) return cudaErrorInvalidValue;
  const vec::Operands<3, 2> ops{
      {da, gu, offset(dtype, gu, ff)}, {ff, 2 * ff, 2 * ff}, {dgu, offset(dtype, dgu, ff)}, {2 * ff, 2 * ff}};
  return run<SwigluBackward>(dtype, ops, tokens, ff, stream);
}

cudaError_t silu_forward_2d(DType dtype, const void* in, std::size_t in_ld, void* out, std::size_t out_ld,
                            std::size_t rows, std::size_t cols, cudaStream_t stream) {
  return run<Silu>(dtype, vec::Operands<1, 1>{{in}, {in_ld}, {out}, {out_ld}}, rows, cols, stream);
}

cudaError_t multiply_2d(DType dtype, const void* a, std::size_t a_ld, const void* b, std::size_t b_ld, void* out,
                        std::size_t out_ld, std::size_t rows, std::size_t cols, cudaStream_t stream) {
  return run<Multiply>(dtype, vec::Operands<2, 1>{{a, b}, {a_ld, b_ld}, {out}, {out_ld}}, rows, cols, stream);
}

cudaError_t silu_backward_2d(DType dtype, const void* dout, std::size_t dout_ld, const void* pre, std::size_t pre_ld,
                             void* din, std::size_t din_ld, std::size_t rows, std::size_t cols, cudaStream_t stream) {
  const vec::Operands<2, 1> ops{{dout, pre}, {dout_ld, pre_ld}, {din}, {din_ld}};
  return run<SiluBackward>(dtype, ops, rows, cols, stream);
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
