// The pre-LayerNorm block's "residual add, then LayerNorm" as one kernel each way:
//   forward   s = a + b                      (the new residual stream, stored in T)
//             y = (s - mean) * rstd * gamma + beta,  mean = Σ s / d,  rstd = 1 / sqrt(Σ (s - mean)² / d + eps)
//   backward  xhat = (s - mean) * rstd,  g = dy * gamma
//             ds = d_residual + rstd * (g - mean(g) - xhat * mean(g * xhat))
//             dgamma = Σ_rows dy * xhat,  dbeta = Σ_rows dy
// over rows of d elements (row-major [rows, d]). The variance is the biased one, as PyTorch's
// LayerNorm. ds is the gradient of s, which is also the gradient of a and of b (the add's
// backward is the identity), so one buffer serves the residual stream and the branch.
//
// T is fp16, bf16 or fp32 for a, b, s, y, gamma, beta, dy, d_residual and ds (gamma and beta are
// the compute copies of fp32 master weights); statistics and dgamma/dbeta are fp32; arithmetic is
// fp32. The forward normalises s as stored (rounded to T), so the backward, which reads the stored
// s, differentiates the function the forward computed.
//
// Launch shape: one block per row, up to 256 threads, each owning 16-byte vectors of the row (or
// single elements when d is not a multiple of 8 fp16/bf16 or 4 fp32 elements, or a pointer is not
// 16-byte aligned). The forward keeps the row in shared memory (d floats), the backward its
// per-column partial sums (2 d floats); both stay within the default 48 KiB, so d ≤ 6144. The
// backward's dgamma/dbeta reduction is deterministic and atomic-free: a fixed number of blocks
// (min(rows, 512)) each sums its rows per column into fp32 partials, a second kernel adds the
// partials in a fixed order.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "dtype.hpp"

namespace wflops::kernels {

constexpr std::size_t kLayerNormMaxDim = 6144;  // the backward's 2 d fp32 partials in 48 KiB

// Forward. b == nullptr: a plain LayerNorm of a (s is then not written and may be nullptr; the
// backward takes a as s). Otherwise s = a + b is written (s may alias a or b). y may not alias a,
// b or s. mean and rstd: `rows` floats each.
cudaError_t residual_layernorm_forward(DType dtype, const void* a, const void* b, void* s, const void* gamma,
                                       const void* beta, void* y, float* mean, float* rstd, std::size_t rows,
                                       std::size_t d, float eps, cudaStream_t stream);

// fp32 scratch the backward needs for its partial sums of dgamma and dbeta.
std::size_t layernorm_backward_workspace_bytes(std::size_t rows, std::size_t d);

// Backward. d_residual == nullptr: no residual gradient (ds is the LayerNorm's alone). ds may alias
// dy or d_residual. dgamma and dbeta (d floats each) are overwritten, or added to with
// `accumulate`. workspace: layernorm_backward_workspace_bytes(rows, d), 16-byte aligned.
cudaError_t layernorm_backward(DType dtype, const void* dy, const void* s, const void* gamma, const float* mean,
                               const float* rstd, const void* d_residual, void* ds, float* dgamma, float* dbeta,
                               bool accumulate, void* workspace, std::size_t rows, std::size_t d, cudaStream_t stream);

// ---- host references, in double, on row-major arrays ---------------------------------------------
// b may be nullptr (s = a). s, y: rows * d; mean, rstd: rows.
void residual_layernorm_forward_host(const double* a, const double* b, const double* gamma, const double* beta,
                                     std::size_t rows, std::size_t d, double eps, double* s, double* y, double* mean,
                                     double* rstd);
// d_residual may be nullptr. ds: rows * d; dgamma, dbeta: d (overwritten).
void layernorm_backward_host(const double* dy, const double* s, const double* gamma, const double* mean,
                             const double* rstd, const double* d_residual, std::size_t rows, std::size_t d, double* ds,
                             double* dgamma, double* dbeta);

}  // namespace wflops::kernels
