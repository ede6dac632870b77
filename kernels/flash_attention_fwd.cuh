// Our fused attention forward, the FlashAttention-2 algorithm: one thread block per
// (batch*head, tile of 64 queries); the Q tile stays in registers, K and V tiles of 64 keys stream
// through shared memory (cp.async, double-buffered); scores and the online softmax stay in fp32
// registers; tensor-core mma.sync m16n8k16 with fp32 accumulation. No s^2 matrix in memory.
// Writes O and the log-sum-exp L. A causal mask skips the key tiles wholly above the diagonal.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "attention_dims.cuh"
#include "dtype.hpp"

namespace wflops::kernels {

// Tile sizes (also the FLOP model's count of computed tiles, flops::attention_tiled_scores).
constexpr long kFlashForwardBlockQ = 64;
constexpr long kFlashForwardBlockK = 64;

// "" when supported, else why not: bf16/fp16, head_dim 64 or 128, seq >= 1,
// batch*heads <= 65535.
std::string flash_attention_unsupported_reason(DType dtype, const AttentionDims& dims);

// O = softmax(Q K^T / sqrt(head_dim)) V, L = log-sum-exp of each row (natural log, scaled scores);
// a row that sees no key gets O = 0 and L = +inf. Q, K, V, O [b, h, s, d]; L fp32 [b, h, s].
// Pointers 16-byte aligned. Returns the first CUDA error, or cudaErrorInvalidValue when unsupported.
cudaError_t flash_attention_forward(DType dtype, const void* q, const void* k, const void* v, void* o,
                                    float* lse, const AttentionDims& dims, cudaStream_t stream);

}  // namespace wflops::kernels
