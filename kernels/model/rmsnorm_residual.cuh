// The Llama block's "residual add, then RMSNorm" as one kernel each way:
//   forward   s = a + b (stored),   y = s * rrms * gamma,   rrms = 1 / sqrt(Σ s² / d + eps)
//   backward  xhat = s * rrms,  g = dy * gamma
//             ds = d_residual + rrms * (g - xhat * mean(g * xhat)),   dgamma = Σ_rows dy * xhat
// over rows of d elements (row-major [rows, d]); no bias, no mean subtraction (Zhang & Sennrich,
// arXiv:1910.07467). As layernorm_residual.cuh in everything else: fp16, bf16 or fp32 storage,
// fp32 statistics and arithmetic, s normalised as stored, ds the gradient of both a and b, one
// block per row of up to 256 threads on 16-byte vectors (single elements otherwise), d ≤ 6144,
// and a deterministic two-stage dgamma (min(rows, 512) blocks of per-column partials, then a
// fixed-order sum).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "dtype.hpp"

namespace wflops::kernels {

constexpr std::size_t kRmsNormMaxDim = 6144;

// b == nullptr: a plain RMSNorm of a (s not written, may be nullptr). s may alias a or b; y may
// not alias a, b or s. rrms: `rows` floats.
cudaError_t residual_rmsnorm_forward(DType dtype, const void* a, const void* b, void* s, const void* gamma, void* y,
                                     float* rrms, std::size_t rows, std::size_t d, float eps, cudaStream_t stream);

std::size_t rmsnorm_backward_workspace_bytes(std::size_t rows, std::size_t d);

// d_residual may be nullptr; ds may alias dy or d_residual. dgamma (d floats) is overwritten, or
// added to with `accumulate`. workspace: rmsnorm_backward_workspace_bytes(rows, d), 16-byte aligned.
cudaError_t rmsnorm_backward(DType dtype, const void* dy, const void* s, const void* gamma, const float* rrms,
                             const void* d_residual, void* ds, float* dgamma, bool accumulate, void* workspace,
                             std::size_t rows, std::size_t d, cudaStream_t stream);

// ---- host references, in double ------------------------------------------------------------------
void residual_rmsnorm_forward_host(const double* a, const double* b, const double* gamma, std::size_t rows,
                                   std::size_t d, double eps, double* s, double* y, double* rrms);
void rmsnorm_backward_host(const double* dy, const double* s, const double* gamma, const double* rrms,
                           const double* d_residual, std::size_t rows, std::size_t d, double* ds, double* dgamma);

}  // namespace wflops::kernels
