// Device-side pieces shared by the elementwise kernels (bias, activation, residual, bias gradient,
// cast): conversions to and from fp32 (all arithmetic is fp32), 16-byte vector loads and stores,
// and the grid size of a grid-stride loop. Included only by .cu files.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
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

}  // namespace wflops::kernels::vec
