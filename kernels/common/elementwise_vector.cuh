// Device-side pieces shared by the elementwise kernels (bias, activation, residual, bias gradient,
// cast, SwiGLU): conversions to and from fp32 (all arithmetic is fp32), 16-byte vector loads and
// stores, the grid size of a grid-stride loop, and the one elementwise loop the bias, activation,
// residual, cast and SwiGLU passes share (elementwise_kernel, at the end). Included only by .cu files.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace wflops::kernels::vec {

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

// Round to nearest even, as the hardware's cvt.rn does.
template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
// fp8 e4m3 (fill_random only): nearest even, saturated to the largest finite value (448), as the
// __nv_fp8_e4m3 constructor converts.
template <>
__device__ __forceinline__ __nv_fp8_e4m3 from_float<__nv_fp8_e4m3>(float x) {
  return __nv_fp8_e4m3(x);
}

// Elements of T in one 16-byte access: 4 fp32, 8 fp16/bf16.
template <typename T>
constexpr int kWidth = static_cast<int>(16 / sizeof(T));

// N elements at p as floats, read with 16-byte loads (p 16-byte aligned, N * sizeof(T) a multiple
// of 16). The bits travel as uint4 so the compiler emits one 128-bit access per 16 bytes.
template <int N, typename T>
__device__ __forceinline__ void load(const T* p, float (&x)[N]) {
  static_assert((N * sizeof(T)) % 16 == 0, "whole 16-byte accesses only");
  constexpr int per = kWidth<T>;
#pragma unroll
  for (int k = 0; k < N / per; ++k) {
    const uint4 bits = reinterpret_cast<const uint4*>(p)[k];
    T elems[per];
    memcpy(elems, &bits, sizeof bits);
#pragma unroll
    for (int j = 0; j < per; ++j) x[k * per + j] = to_float(elems[j]);
  }
}

// Stores N floats at p as T (rounded to nearest even) with 16-byte stores.
template <int N, typename T>
__device__ __forceinline__ void store(T* p, const float (&x)[N]) {
  static_assert((N * sizeof(T)) % 16 == 0, "whole 16-byte accesses only");
  constexpr int per = kWidth<T>;
#pragma unroll
  for (int k = 0; k < N / per; ++k) {
    T elems[per];
#pragma unroll
    for (int j = 0; j < per; ++j) elems[j] = from_float<T>(x[k * per + j]);
    uint4 bits;
    memcpy(&bits, elems, sizeof bits);
    reinterpret_cast<uint4*>(p)[k] = bits;
  }
}

inline bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over `items`: one item per thread up to 65536 blocks (16M threads,
// far more than any GPU holds at once, so every SM is busy), then each thread loops.
inline int blocks_for(std::size_t items) {
  const std::size_t wanted = (items + kThreads - 1) / kThreads;
  if (wanted == 0) return 1;
  return static_cast<int>(wanted < 65536 ? wanted : 65536);
}

// ---- the elementwise loop ----------------------------------------------------------------------
// NI inputs and NO outputs of one elementwise pass, each a row-major [rows, cols] view with its own
// row length `ld` in elements. A flat array of n elements is one row of n (its ld is never used);
// ld 0 gives every row the same elements (a bias broadcast over the rows).
template <int NI, int NO>
struct Operands {
  const void* in[NI];
  std::size_t in_ld[NI];
  void* out[NO];
  std::size_t out_ld[NO];
};

template <typename In, typename Out, int NI, int NO>
struct Views {
  const In* in[NI];
  std::size_t in_ld[NI];
  Out* out[NO];
  std::size_t out_ld[NO];
};

// Elements of one vector: every operand then moves in whole 16-byte accesses (8 for a cast between
// fp32 and a 16-bit type: one access on the 16-bit side, two on the fp32 side).
template <typename In, typename Out>
constexpr int kVector = kWidth<In> > kWidth<Out> ? kWidth<In> : kWidth<Out>;

// y = op(x) at every (row, column), x the NI inputs and y the NO outputs there as floats: Op is a
// functor with `__device__ void operator()(const float (&x)[NI], float (&y)[NO]) const`. Vectorised
// (see launch_elementwise), a grid-stride loop over whole vectors: of every row (kRows; each row
// then holds whole vectors), or of a flat array (kRows false: one row, no index division) whose
// elements past the last whole vector follow one at a time. Not vectorised, every element one at
// a time. Each thread reads the elements of one (row, column) before it writes the same position,
// so an output may alias an input position for position.
template <typename In, typename Out, int NI, int NO, typename Op, bool kRows>
__global__ void elementwise_kernel(Views<In, Out, NI, NO> p, std::size_t rows, std::size_t cols, bool vectorised) {
  constexpr int W = kVector<In, Out>;
  const Op op{};
  const std::size_t tid = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  if (vectorised) {
    const std::size_t vectors = cols / W;  // per row
    for (std::size_t v = tid; v < rows * vectors; v += stride) {
      const std::size_t r = kRows ? v / vectors : 0, c = (v - r * vectors) * W;
      float x[NI][W], y[NO][W];
#pragma unroll
      for (int i = 0; i < NI; ++i) load<W>(p.in[i] + r * p.in_ld[i] + c, x[i]);
#pragma unroll
      for (int j = 0; j < W; ++j) {
        float xe[NI], ye[NO];
#pragma unroll
        for (int i = 0; i < NI; ++i) xe[i] = x[i][j];
        op(xe, ye);
#pragma unroll
        for (int o = 0; o < NO; ++o) y[o][j] = ye[o];
      }
#pragma unroll
      for (int o = 0; o < NO; ++o) store<W>(p.out[o] + r * p.out_ld[o] + c, y[o]);
    }
    if (kRows) return;  // every row held whole vectors
  }
  const std::size_t first = vectorised ? cols / W * W : 0, tail = cols - first;  // the columns left
  for (std::size_t e = tid; e < rows * tail; e += stride) {
    const std::size_t r = kRows ? e / tail : 0, c = first + (e - r * tail);
    float xe[NI], ye[NO];
#pragma unroll
    for (int i = 0; i < NI; ++i) xe[i] = to_float(p.in[i][r * p.in_ld[i] + c]);
    op(xe, ye);
#pragma unroll
    for (int o = 0; o < NO; ++o) p.out[o][r * p.out_ld[o] + c] = from_float<Out>(ye[o]);
  }
}

// Runs Op over [rows, cols] views of In inputs and Out outputs. The vector path needs every operand
// 16-byte aligned and, for rows (kRows), cols and every row length whole numbers of vectors, so
// that every row starts aligned and no vector straddles two rows. The caller checks the pointers;
// nothing to do is success.
template <typename Op, typename In, typename Out, bool kRows = true, int NI, int NO>
cudaError_t launch_elementwise(const Operands<NI, NO>& ops, std::size_t rows, std::size_t cols, cudaStream_t stream) {
  constexpr int W = kVector<In, Out>;
  if (rows == 0 || cols == 0) return cudaSuccess;
  Views<In, Out, NI, NO> p{};
  bool vectorised = !kRows || cols % W == 0;
  for (int i = 0; i < NI; ++i) {
    p.in[i] = static_cast<const In*>(ops.in[i]);
    p.in_ld[i] = ops.in_ld[i];
    vectorised = vectorised && aligned16(ops.in[i]) && (!kRows || ops.in_ld[i] % W == 0);
  }
  for (int o = 0; o < NO; ++o) {
    p.out[o] = static_cast<Out*>(ops.out[o]);
    p.out_ld[o] = ops.out_ld[o];
    vectorised = vectorised && aligned16(ops.out[o]) && (!kRows || ops.out_ld[o] % W == 0);
  }
  // One thread per vector (and, flat, per element of the tail), or per element.
  const std::size_t items = vectorised ? rows * (cols / W) + cols % W : rows * cols;
  elementwise_kernel<In, Out, NI, NO, Op, kRows><<<blocks_for(items), kThreads, 0, stream>>>(p, rows, cols, vectorised);
  return cudaGetLastError();
}

// The same over flat arrays of n elements: launch_flat<Op, In, Out>({a, b}, {out}, n, stream).
template <typename Op, typename In, typename Out, int NI, int NO>
cudaError_t launch_flat(const void* const (&in)[NI], void* const (&out)[NO], std::size_t n, cudaStream_t stream) {
  Operands<NI, NO> ops{};
  for (int i = 0; i < NI; ++i) ops.in[i] = in[i];
  for (int o = 0; o < NO; ++o) ops.out[o] = out[o];
  return launch_elementwise<Op, In, Out, false>(ops, 1, n, stream);
}

// x + y: the residual connection and the bias.
struct Add {
  __device__ void operator()(const float (&x)[2], float (&y)[1]) const { y[0] = x[0] + x[1]; }
};

}  // namespace wflops::kernels::vec
