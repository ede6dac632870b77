// Our fused attention forward, the FlashAttention-2 algorithm: one thread block per
// (batch*head, tile of 64 queries); the Q tile stays in registers, K and V tiles of 64 keys stream
// through shared memory (cp.async, double-buffered); scores and the online softmax stay in fp32
// registers; tensor-core mma.sync m16n8k16 with fp32 accumulation. No s^2 matrix in memory.
// Writes O and the log-sum-exp L. A causal mask skips the key tiles wholly above the diagonal.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "attention/attention_dims.cuh"
#include "dtype.hpp"

namespace wflops::kernels {

// Tile sizes (also the FLOP model's count of computed tiles, flops::attention_tiled_scores).
constexpr long kFlashForwardBlockQ = 64;
constexpr long kFlashForwardBlockK = 64;

// Every tile row in shared memory is padded by 8 16-bit elements (16 bytes), so that the eight row
// addresses of an ldmatrix fall in different bank groups.
constexpr long kFlashRowPad = 8;

// Dynamic shared memory of one forward block: two K and two V tiles of 64 padded rows (double
// buffers). The Q tile has no space of its own: it lands in K's second buffer, which the first
// prefetch only overwrites once every warp holds Q in registers. d = 64: 36 KiB; d = 128: 68 KiB.
constexpr long flash_forward_shared_bytes(long head_dim) {
  return 4 * kFlashForwardBlockK * (head_dim + kFlashRowPad) * 2;
}

// "" when supported, else why not: bf16/fp16, head_dim 64 or 128, seq >= 1,
// batch*heads <= 65535.
std::string flash_attention_unsupported_reason(DType dtype, const AttentionDims& dims);

// O = softmax(Q K^T / sqrt(head_dim)) V, L = log-sum-exp of each row (natural log, scaled scores);
// a row that sees no key gets O = 0 and L = +inf. Q, K, V, O [b, h, s, d]; L fp32 [b, h, s].
// Pointers 16-byte aligned. Returns the first CUDA error, or cudaErrorInvalidValue when unsupported.
cudaError_t flash_attention_forward(DType dtype, const void* q, const void* k, const void* v, void* o, float* lse,
                                    const AttentionDims& dims, cudaStream_t stream);

}  // namespace wflops::kernels
