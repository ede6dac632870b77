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

// A grid-stride loop over (token, 16-byte piece c) of [tokens][vecs]: out[t][c] = the sum over the
// token's rows j (token_rows[token_offsets[t] .. token_offsets[t + 1])) of w_j * in[row j][c], in
// that order, in fp32, rounded once to bf16. w_j is row_score[row j] when kScaled, else 1.
template <bool kScaled>
__device__ __forceinline__ void sum_token_rows(const Bf16x8* in, const float* row_score, const int* token_offsets,
                                               const int* token_rows, std::size_t tokens, int vecs, Bf16x8* out) {
  const std::size_t total = tokens * vecs;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::size_t t = i / vecs, c = i % vecs;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int j = token_offsets[t]; j < token_offsets[t + 1]; ++j) {
      const int r = token_rows[j];
      const float s = kScaled ? row_score[r] : 1.0f;  // 1 * x == x exactly: the plain sum
      const Bf16x8 v = in[static_cast<std::size_t>(r) * vecs + c];
      for (int q = 0; q < 8; ++q) acc[q] += s * __bfloat162float(v.v[q]);
    }
    Bf16x8 o;
    for (int q = 0; q < 8; ++q) o.v[q] = __float2bfloat16(acc[q]);
    out[i] = o;
  }
}

// Launch shape of the one-thread-per-item kernels (gather, combine, GELU, histogram): 256 threads
// and at most 2^20 blocks; their grid-stride loops cover whatever lies beyond.
inline constexpr int kThreads = 256;
inline unsigned blocks_for(std::size_t n) {
  const std::size_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < (std::size_t{1} << 20) ? b : (std::size_t{1} << 20));
}

}  // namespace wflops::kernels::moe_detail
