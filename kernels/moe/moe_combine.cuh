// Un-permutation and combine: each token sums its expert outputs weighted by their scores.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace wflops::kernels {

// y[t, :] = sum over token t's rows r (token_rows[token_offsets[t] .. token_offsets[t+1]), in
// that order, fp32) of row_score[r] * expert_out[r, :]. No atomics: deterministic; zero rows -> 0.
cudaError_t moe_combine(const __nv_bfloat16* expert_out, const float* row_score, const int* token_offsets,
                        const int* token_rows, int tokens, int d, __nv_bfloat16* y, cudaStream_t stream);

// Its backward, one warp per permuted row r of token t = row_token[r]:
//   d_expert_out[r, :] = row_score[r] * dy[t, :]       (dy scattered into the permuted order)
//   d_score[r]         = dot(dy[t, :], expert_out[r, :])  (fp32, fixed reduction order)
cudaError_t moe_combine_backward(const __nv_bfloat16* dy, const __nv_bfloat16* expert_out, const int* row_token,
                                 const float* row_score, int rows, int d, __nv_bfloat16* d_expert_out, float* d_score,
                                 cudaStream_t stream);

}  // namespace wflops::kernels
