// Device-side pieces shared by the row kernels of the model step (layernorm_residual.cu,
// cross_entropy.cu, embedding.cu): loads and stores of W consecutive elements that are 16-byte
// vectors when W is the vector width and single elements when W = 1, and block-wide sums that
// every thread receives bit-identically (a fixed order of additions, so results never depend on
// scheduling). Included only by .cu files.
#pragma once
#include <cuda_runtime.h>

#include "common/elementwise_vector.cuh"

namespace wflops::kernels::rows {

// W elements at p as floats: one 16-byte load when W is T's vector width (p 16-byte aligned),
// else element by element.
template <int W, typename T>
__device__ __forceinline__ void load(const T* p, float (&x)[W]) {
  if constexpr (W * sizeof(T) % 16 == 0) {
    vec::load<W>(p, x);
  } else {
#pragma unroll
    for (int j = 0; j < W; ++j) x[j] = vec::to_float(p[j]);
  }
}

template <int W, typename T>
__device__ __forceinline__ void store(T* p, const float (&x)[W]) {
  if constexpr (W * sizeof(T) % 16 == 0) {
    vec::store<W>(p, x);
  } else {
#pragma unroll
    for (int j = 0; j < W; ++j) p[j] = vec::from_float<T>(x[j]);
  }
}

// x rounded to T and back: what a value stored in T and read again is.
template <typename T>
__device__ __forceinline__ float round_to(float x) {
  return vec::to_float(vec::from_float<T>(x));
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Largest block the row kernels launch, and so the size of their reduction scratch.
constexpr int kMaxThreads = 1024;
constexpr int kMaxWarps = kMaxThreads / 32;

// Sums of a and b over the block (blockDim.x a multiple of 32, at most kMaxThreads); every thread
// returns the same two values, added in warp order. `scratch` holds 2 * kMaxWarps floats; the
// first barrier lets a previous call's readers finish with it.
__device__ __forceinline__ void block_sum2(float& a, float& b, float* scratch) {
  a = warp_sum(a);
  b = warp_sum(b);
  const int warp = threadIdx.x / 32, warps = blockDim.x / 32;
  __syncthreads();
  if (threadIdx.x % 32 == 0) {
    scratch[warp] = a;
    scratch[kMaxWarps + warp] = b;
  }
  __syncthreads();
  a = 0.0f;
  b = 0.0f;
  for (int w = 0; w < warps; ++w) {
    a += scratch[w];
    b += scratch[kMaxWarps + w];
  }
}

__device__ __forceinline__ float block_sum(float a, float* scratch) {
  float unused = 0.0f;
  block_sum2(a, unused, scratch);
  return a;
}

// Threads for a block that owns one row of `vectors` W-wide pieces: enough warps to give every
// thread one piece, at most `cap` (a multiple of 32).
inline int row_threads(std::size_t vectors, int cap) {
  const std::size_t warps = (vectors + 31) / 32;
  const std::size_t threads = warps * 32;
  if (threads < 32) return 32;
  return threads > static_cast<std::size_t>(cap) ? cap : static_cast<int>(threads);
}

}  // namespace wflops::kernels::rows
