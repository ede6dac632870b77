// SwiGLU, the gated activation of LLaMA-style MLPs, between the two GEMMs of the step:
//   forward   a[t, j] = silu(g[t, j]) * u[t, j]
//   backward  dg[t, j] = da[t, j] * u[t, j] * silu'(g[t, j]),  du[t, j] = da[t, j] * silu(g[t, j])
// with silu(x) = x sigmoid(x) and silu'(x) = sigmoid(x) (1 + x (1 - sigmoid(x))).
//
// Layout: ONE GEMM x W1^T with W1 = [Wg; Wu] stacked ([2 ff, d]) gives gu = [T, 2 ff], row t holding
// the gate in columns 0..ff-1 and the up projection in columns ff..2ff-1 (concatenated, as
// PyTorch's `linear(x).chunk(2, -1)` reads it, not interleaved): each half of a row is contiguous,
// so 16-byte vectors of g and u line up with those of a whenever ff is a multiple of the vector
// width, and the peer script's module and the reference use the same W1. The backward writes dg
// and du into one [T, 2 ff] buffer of the same layout, so dW1 = dgu^T x and dx = dgu W1 stay one
// GEMM each. No bias (LLaMA's MLPs have none).
//
// fp16, bf16 or fp32 storage, fp32 arithmetic. 16-byte vector accesses when ff (and every row
// length) is a multiple of the vector width and the pointers are 16-byte aligned; otherwise one
// element at a time (rows then start at unaligned addresses), so any ff runs.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "dtype.hpp"

namespace wflops::kernels {

// ---- fused: one pass each way ------------------------------------------------------------------
// a [T, ff] = silu(gu[:, :ff]) * gu[:, ff:], gu [T, 2 ff].
cudaError_t swiglu_forward(DType dtype, const void* gu, void* a, std::size_t tokens, std::size_t ff,
                           cudaStream_t stream);
// dgu [T, 2 ff] = [da * u * silu'(g) | da * silu(g)] from da [T, ff] and gu [T, 2 ff]. dgu may
// alias gu (each element is read before the same thread writes it), never da.
cudaError_t swiglu_backward(DType dtype, const void* da, const void* gu, void* dgu, std::size_t tokens, std::size_t ff,
                            cudaStream_t stream);

// ---- unfused: the passes eager PyTorch runs, on strided [rows, cols] views ----------------------
// Each operand is a row-major [rows, cols] view with its own row length (ld, in elements), e.g. the
// gate half of gu is (gu, ld 2 ff) and the up half (gu + ff elements, ld 2 ff).
// out = silu(in)
cudaError_t silu_forward_2d(DType dtype, const void* in, std::size_t in_ld, void* out, std::size_t out_ld,
                            std::size_t rows, std::size_t cols, cudaStream_t stream);
// out = a * b
cudaError_t multiply_2d(DType dtype, const void* a, std::size_t a_ld, const void* b, std::size_t b_ld, void* out,
                        std::size_t out_ld, std::size_t rows, std::size_t cols, cudaStream_t stream);
// din = dout * silu'(pre)
cudaError_t silu_backward_2d(DType dtype, const void* dout, std::size_t dout_ld, const void* pre, std::size_t pre_ld,
                             void* din, std::size_t din_ld, std::size_t rows, std::size_t cols, cudaStream_t stream);

// ---- host references, in double ------------------------------------------------------------------
double silu_host(double x);
double silu_derivative_host(double x);
// One element of the forward and of the backward.
double swiglu_host(double g, double u);
void swiglu_backward_host(double da, double g, double u, double& dg, double& du);

}  // namespace wflops::kernels
