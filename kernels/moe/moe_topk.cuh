// Token-choice routing: each token's top-k experts by router probability (k = G).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

namespace wflops::kernels {

// The most shared memory a block gets without opting in, static and dynamic together (48 KiB; a
// kernel that needs more must raise cudaFuncAttributeMaxDynamicSharedMemorySize with
// cudaFuncSetAttribute first: CUDA C++ Programming Guide, shared memory). moe_top_k does not opt in.
inline constexpr std::size_t kMoeTopKSharedLimit = 48 * 1024;

// Shared memory one moe_top_k block needs for `experts` experts: the token's probabilities
// (4 bytes each, dynamic) and the block reduction's per-warp scratch (static).
std::size_t moe_top_k_shared_bytes(int experts);
// The most experts that fit kMoeTopKSharedLimit (12224).
int moe_top_k_max_experts();
// "" when moe_top_k takes `experts` and `k`, else why not (the shared-memory need named).
std::string moe_top_k_unsupported_reason(int experts, int k);

// For each token t: expert[t*k + j] and score[t*k + j] are its j-th highest probability, highest
// first; equal probabilities go to the lower expert index (the CPU reference's rule), so the
// result is deterministic. Needs k <= experts and at most moe_top_k_max_experts() experts;
// returns cudaErrorInvalidValue (launching nothing) otherwise.
cudaError_t moe_top_k(const float* probs, int tokens, int experts, int k, int* expert, float* score,
                      cudaStream_t stream);

}  // namespace wflops::kernels
