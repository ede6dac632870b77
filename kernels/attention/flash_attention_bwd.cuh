// Our fused attention backward, the FlashAttention-2 algorithm: one thread block per
// (batch*head, tile of 64 keys); the block loops over tiles of 32 queries (Q, dO, L and D
// double-buffered: the next tile loads while this one is computed), recomputes
// P = exp(scale Q K^T - L) from the forward's log-sum-exp, and accumulates dV = P^T dO and
// dK = dS^T Q in registers (dS = P (dP - D), dP = dO V^T, D = rowsum(dO * O) from a small
// preprocessing kernel). dQ = dS K is added in fp32 with atomics (two columns an atomic from sm_90)
// into a workspace, then converted.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "attention/attention_dims.cuh"
#include "attention/flash_attention_fwd.cuh"
#include "dtype.hpp"

namespace wflops::kernels {

constexpr long kFlashBackwardBlockQ = 32;
constexpr long kFlashBackwardBlockK = 64;

// Dynamic shared memory of one backward block: the K and V tiles (64 padded rows each); Q and dO
// (32 padded rows each) and L and D (32 floats each), all four double-buffered so that the next query
// tile loads while this one is computed; the dS tile (32 queries x 64 keys, padded). Rows are padded
// as in the forward (kFlashRowPad). d = 64: 41 KiB; d = 128: 73 KiB.
constexpr long flash_backward_shared_bytes(long head_dim) {
  return (2 * kFlashBackwardBlockK + 4 * kFlashBackwardBlockQ) * (head_dim + kFlashRowPad) * 2 +
         kFlashBackwardBlockQ * (kFlashBackwardBlockK + kFlashRowPad) * 2 + 4 * kFlashBackwardBlockQ * 4;
}

// fp32 workspace the backward needs: dQ accumulators (b*h*s*d) and D (b*h*s).
std::size_t flash_attention_backward_workspace_bytes(const AttentionDims& dims);

// dQ, dK, dV of O = softmax(Q K^T / sqrt(d)) V for the upstream gradient dO, given the forward's O
// and L. Same layouts and support as flash_attention_forward (flash_attention_unsupported_reason).
// Four launches: D and the zeroed dQ accumulators, the main kernel, the dQ conversion. Pointers,
// the workspace too, 16-byte aligned (cudaMalloc's are); cudaErrorInvalidValue otherwise.
cudaError_t flash_attention_backward(DType dtype, const void* q, const void* k, const void* v, const void* o,
                                     const void* d_o, const float* lse, void* dq, void* dk, void* dv, void* workspace,
                                     const AttentionDims& dims, cudaStream_t stream);

}  // namespace wflops::kernels
