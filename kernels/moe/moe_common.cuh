// Device helpers shared by the MoE kernels (kernels/moe_*.cu): deterministic block reductions
// (a fixed shuffle tree, so the same inputs always give the same bits) and 16-byte bf16 vectors.
#pragma once
#include <cuda_bf16.h>

#include <climits>
#include <cstddef>
#include <cstdint>

namespace wflops::kernels::moe_detail {

struct Sum {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct Max {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

template <typename Op>
__device__ float warp_reduce(float v, Op op) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Every thread of the block gets the reduction of `v`; `scratch` holds 32 floats of shared memory.
template <typename Op>
__device__ float block_reduce(float v, Op op, float identity, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = warp_reduce(v, op);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = threadIdx.x < warps ? scratch[threadIdx.x] : identity;
  if (warp == 0) v = warp_reduce(v, op);
  if (threadIdx.x == 0) scratch[0] = v;
  __syncthreads();
  return scratch[0];
}

// Eight bf16 values moved as one 16-byte load or store.
struct alignas(16) Bf16x8 {
  __nv_bfloat16 v[8];
};

// Launch shape of the one-thread-per-item kernels (gather, combine, GELU, histogram): 256 threads
// and at most 2^20 blocks; their grid-stride loops cover whatever lies beyond.
inline constexpr int kThreads = 256;
inline unsigned blocks_for(std::size_t n) {
  const std::size_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < (std::size_t{1} << 20) ? b : (std::size_t{1} << 20));
}

}  // namespace wflops::kernels::moe_detail
