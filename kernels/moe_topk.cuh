// Token-choice routing: each token's top-k experts by router probability (k = G).
#pragma once
#include <cuda_runtime.h>

namespace wflops::kernels {

// For each token t: expert[t*k + j] and score[t*k + j] are its j-th highest probability, highest
// first; equal probabilities go to the lower expert index (the CPU reference's rule), so the
// result is deterministic. Needs k <= experts and experts * 4 bytes of shared memory (<= 48 KiB).
cudaError_t moe_top_k(const float* probs, int tokens, int experts, int k, int* expert, float* score,
                      cudaStream_t stream);

}  // namespace wflops::kernels
