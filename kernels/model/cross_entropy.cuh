// Softmax + cross-entropy over the LM head's logits, forward and backward in one kernel:
//   loss[t]      = log Σ_j exp(z[t, j]) - z[t, target[t]]            (fp32, per token)
//   dlogits[t,j] = scale * (softmax(z[t])_j - [j == target[t]])        (in the logits' dtype)
// with scale the gradient of the loss that reaches each token (1/T for the mean over T tokens).
// fp16 gradients need a loss scale folded into `scale` (e.g. 1024/T, unscaled later in fp32): with
// V = 50257 and T = 8192, softmax/T is about 2.4e-9 on average, below fp16's smallest subnormal.
// The logits are never converted to an fp32 copy: each row is read once for an online max and
// sum (the running sum is rescaled whenever the running max grows), then once more to write the
// gradient, which may overwrite the logits in place. A token whose target is negative is ignored
// (PyTorch's ignore_index): loss 0 and a zero gradient row.
//
// Rows are row-major [T, ld] with ld ≥ V elements; columns V..ld-1 (a vocabulary padded for the
// GEMMs) take no part in the softmax and get a zero gradient. fp16, bf16 or fp32 logits; fp32
// arithmetic. Launch shape: one block per token, up to 512 threads each owning 16-byte vectors
// (when ld is a multiple of 8 fp16/bf16 or 4 fp32 elements and the logits 16-byte aligned; single
// elements otherwise).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "dtype.hpp"

namespace wflops::kernels {

// targets: T ints in [0, V), or negative (ignored). A target ≥ V is a bug of the caller's that the
// host cannot see (the targets are in device memory): the kernel ignores it too rather than read
// past the row, so such a token silently costs 0.
// losses: T floats. dlogits may equal logits (in place) or be nullptr (forward only).
cudaError_t softmax_cross_entropy(DType dtype, const void* logits, void* dlogits, const int* targets, float* losses,
                                  std::size_t tokens, std::size_t vocab, std::size_t ld, float scale,
                                  cudaStream_t stream);

// *mean = Σ losses / n, summed in one block in a fixed order (the same bits every run).
cudaError_t mean_loss(const float* losses, std::size_t n, float* mean, cudaStream_t stream);

// ---- host references, in double ------------------------------------------------------------------
// One row of V logits: returns the loss, and writes the gradient (scaled by `scale`) to dlogits
// when it is not nullptr. A target outside [0, V): returns 0, gradient 0.
double softmax_cross_entropy_host(const double* logits, std::size_t vocab, int target, double scale, double* dlogits);

}  // namespace wflops::kernels
