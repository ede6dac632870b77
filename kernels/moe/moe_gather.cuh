// Moving token rows into the permuted (expert-contiguous) order and back.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace wflops::kernels {

// xp[r, :] = x[row_token[r], :] for `rows` rows of d bf16 values (d a multiple of 8: 16-byte copies).
cudaError_t moe_gather(const __nv_bfloat16* x, const int* row_token, int rows, int d, __nv_bfloat16* xp,
                       cudaStream_t stream);

// The gather's backward: dx[t, :] = sum of dxp[r, :] over token t's rows
// token_rows[token_offsets[t] .. token_offsets[t+1]), summed in that order in fp32 (deterministic,
// no atomics); a token with no row gets zeros.
cudaError_t moe_gather_backward(const __nv_bfloat16* dxp, const int* token_offsets, const int* token_rows, int tokens,
                                int d, __nv_bfloat16* dx, cudaStream_t stream);

}  // namespace wflops::kernels
