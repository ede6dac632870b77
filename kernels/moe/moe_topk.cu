// One block per token; the token's probabilities sit in shared memory. k rounds of a block-wide
// arg-max: each thread keeps the best of the experts it owns (e = thread + i * blockDim), the block
// reduces those, and the owner of the winner marks it taken and rescans only its own experts.
#include <fmt/core.h>

#include <cfloat>
#include <climits>

#include "moe/moe_common.cuh"
#include "moe/moe_topk.cuh"

namespace wflops::kernels {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxWarps = 32;  // the per-warp scratch holds any block size up to 1024 threads
// The static shared memory of top_k_kernel (best_v, best_i), counted against the same 48 KiB.
constexpr std::size_t kStaticShared = kMaxWarps * (sizeof(float) + sizeof(int));
static_assert(kThreads / 32 <= kMaxWarps, "one scratch slot per warp");

// (a, ia) beats (b, ib): larger value, or equal value and lower index.
__device__ bool beats(float a, int ia, float b, int ib) { return a > b || (a == b && ia < ib); }

__device__ void warp_argmax(float& v, int& i) {
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, i, o);
    if (beats(ov, oi, v, i)) {
      v = ov;
      i = oi;
    }
  }
}

__global__ void top_k_kernel(const float* probs, int experts, int k, int* expert_out, float* score_out) {
  extern __shared__ float vals[];
  __shared__ float best_v[kMaxWarps];
  __shared__ int best_i[kMaxWarps];
  const std::size_t t = blockIdx.x;
  for (int e = threadIdx.x; e < experts; e += blockDim.x) vals[e] = probs[t * experts + e];
  __syncthreads();
  auto local_best = [&](float& v, int& i) {
    v = -FLT_MAX;
    i = INT_MAX;
    for (int e = threadIdx.x; e < experts; e += blockDim.x) {
      if (beats(vals[e], e, v, i)) {
        v = vals[e];
        i = e;
      }
    }
  };
  float mine_v;
  int mine_i;
  local_best(mine_v, mine_i);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int j = 0; j < k; ++j) {
    float v = mine_v;
    int i = mine_i;
    warp_argmax(v, i);
    if (lane == 0) {
      best_v[warp] = v;
      best_i[warp] = i;
    }
    __syncthreads();
    if (warp == 0) {
      v = lane < warps ? best_v[lane] : -FLT_MAX;
      i = lane < warps ? best_i[lane] : INT_MAX;
      warp_argmax(v, i);
      if (lane == 0) {
        best_v[0] = v;
        best_i[0] = i;
        expert_out[t * k + j] = i;
        score_out[t * k + j] = v;
      }
    }
    __syncthreads();
    const int winner = best_i[0];
    __syncthreads();  // everyone has read the winner before the next round overwrites it
    if (winner % static_cast<int>(blockDim.x) == static_cast<int>(threadIdx.x)) {
      vals[winner] = -FLT_MAX;  // taken (probabilities are >= 0)
      local_best(mine_v, mine_i);
    }
  }
}

}  // namespace

std::size_t moe_top_k_shared_bytes(int experts) {
  return static_cast<std::size_t>(experts < 0 ? 0 : experts) * sizeof(float) + kStaticShared;
}

int moe_top_k_max_experts() { return static_cast<int>((kMoeTopKSharedLimit - kStaticShared) / sizeof(float)); }

std::string moe_top_k_unsupported_reason(int experts, int k) {
  if (experts <= 0 || k <= 0 || k > experts) {
    return fmt::format("top-k routing needs 1 <= k <= experts (k = {}, {} experts)", k, experts);
  }
  if (moe_top_k_shared_bytes(experts) > kMoeTopKSharedLimit) {
    return fmt::format(
        "token choice keeps a token's {} probabilities in shared memory: {} bytes with the reduction's "
        "scratch, over the {} a block gets without opting in (at most {} experts)",
        experts, moe_top_k_shared_bytes(experts), kMoeTopKSharedLimit, moe_top_k_max_experts());
  }
  return "";
}

cudaError_t moe_top_k(const float* probs, int tokens, int experts, int k, int* expert, float* score,
                      cudaStream_t stream) {
  if (tokens <= 0 || !moe_top_k_unsupported_reason(experts, k).empty()) return cudaErrorInvalidValue;
  // Dynamic part only: the launch adds the kernel's static shared memory to it.
  const std::size_t shared = static_cast<std::size_t>(experts) * sizeof(float);
  top_k_kernel<<<tokens, kThreads, shared, stream>>>(probs, experts, k, expert, score);
  return cudaGetLastError();
}

}  // namespace wflops::kernels
