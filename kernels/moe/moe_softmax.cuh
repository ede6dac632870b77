// The router's softmax over the N = E*G experts of each token, forward and backward (fp32).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace wflops::kernels {

// probs[t, :] = softmax(logits[t, :]) for `tokens` rows of `experts` values (probs may alias logits).
cudaError_t moe_softmax_forward(const float* logits, float* probs, int tokens, int experts, cudaStream_t stream);

// The backward for a sparse gradient of the probabilities: token t's assignments are
// rows token_rows[token_offsets[t] .. token_offsets[t+1]), each giving d(probs[t, row_expert[r]]) =
// row_dscore[r] (every other probability has zero gradient). Writes the full
// dlogits[t, :] = p * (dp - sum(p * dp)) in bf16, the input of the router's backward GEMMs.
cudaError_t moe_softmax_backward(const float* probs, const int* token_offsets, const int* token_rows,
                                 const int* row_expert, const float* row_dscore, __nv_bfloat16* dlogits, int tokens,
                                 int experts, cudaStream_t stream);

}  // namespace wflops::kernels
