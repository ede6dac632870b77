// Expert-choice routing: in every group of 256 tokens, each expert takes the `take` = 256/E
// tokens with the highest router probability for it; the result is already expert-contiguous.
#pragma once
#include <cuda_runtime.h>

namespace wflops::kernels {

inline constexpr int kMoeGroupTokens = 256;

// Writes, for expert e and group g, rows e*capacity + g*take + i (i < take) of the permuted order
// (capacity = tokens/256 * take): the chosen tokens in increasing token order, with their
// probability as score and e as row expert. Equal probabilities go to the lower token index.
// tokens must be a multiple of 256 and take <= 256.
cudaError_t moe_expert_choice(const float* probs, int tokens, int experts, int take, int* row_token, float* row_score,
                              int* row_expert, cudaStream_t stream);

}  // namespace wflops::kernels
