// One block of 256 threads per (expert, group), one thread per token of the group. A token is
// chosen when fewer than `take` tokens beat it (rank < take); its slot is the number of chosen
// tokens before it (a block scan), which keeps the chosen tokens in token order. Blocks of
// neighbouring experts read neighbouring probabilities, so the strided loads meet in L2.
#include <cub/block/block_scan.cuh>

#include "moe/moe_expert_choice.cuh"

namespace wflops::kernels {

namespace {

__global__ void expert_choice_kernel(const float* probs, int experts, int take, int capacity, int* row_token,
                                     float* row_score, int* row_expert) {
  using Scan = cub::BlockScan<int, kMoeGroupTokens>;
  __shared__ float s[kMoeGroupTokens];
  __shared__ typename Scan::TempStorage scan_storage;
  const int e = blockIdx.x, g = blockIdx.y, i = threadIdx.x;
  const int t = g * kMoeGroupTokens + i;
  const float v = probs[static_cast<std::size_t>(t) * experts + e];
  s[i] = v;
  __syncthreads();
  int rank = 0;
  for (int j = 0; j < kMoeGroupTokens; ++j) {
    const float o = s[j];
    rank += (o > v || (o == v && j < i)) ? 1 : 0;
  }
  const int chosen = rank < take ? 1 : 0;
  int slot = 0;
  Scan(scan_storage).ExclusiveSum(chosen, slot);
  if (chosen) {
    const std::size_t row = static_cast<std::size_t>(e) * capacity + static_cast<std::size_t>(g) * take + slot;
    row_token[row] = t;
    row_score[row] = v;
    row_expert[row] = e;
  }
}

}  // namespace

cudaError_t moe_expert_choice(const float* probs, int tokens, int experts, int take, int* row_token, float* row_score,
                              int* row_expert, cudaStream_t stream) {
  if (tokens <= 0 || tokens % kMoeGroupTokens || experts <= 0 || take <= 0 || take > kMoeGroupTokens) {
    return cudaErrorInvalidValue;
  }
  const int groups = tokens / kMoeGroupTokens;
  if (groups > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(experts), static_cast<unsigned>(groups));
  expert_choice_kernel<<<grid, kMoeGroupTokens, 0, stream>>>(probs, experts, take, groups * take, row_token, row_score,
                                                             row_expert);
  return cudaGetLastError();
}

}  // namespace wflops::kernels
