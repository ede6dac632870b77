// The elementwise parts of unfused attention (the GEMMs are cuBLAS's), and the row dot
// D = rowsum(dO * O) that every backward needs. Scores, probabilities and gradients are
// [batch*heads*seq][seq] row-major matrices in bf16 or fp16; statistics are fp32.
#pragma once
#include <cuda_runtime.h>

#include "attention/attention_dims.cuh"
#include "dtype.hpp"

namespace wflops::kernels {

// P = softmax(scale * S) by rows, with the causal mask (key j > query i gets probability 0)
// applied before the max; lse[row] = log-sum-exp of the row's scaled scores (natural log). A row
// that sees no key gets P = 0 and lse = +inf. dtype: bf16 or fp16. `probs` may equal `scores`.
cudaError_t attention_softmax_forward(DType dtype, const void* scores, void* probs, float* lse,
                                      const AttentionDims& dims, float scale, cudaStream_t stream);

// dS = scale * P * (dP - D[row]) elementwise, written over dP (the gradient of the unscaled
// scores Q K^T, ready for dQ = dS K and dK = dS^T Q).
cudaError_t attention_softmax_backward(DType dtype, const void* probs, void* dp_to_ds, const float* row_dot,
                                       const AttentionDims& dims, float scale, cudaStream_t stream);

// row_dot[row] = sum_c dO[row][c] * O[row][c] in fp32, for every query row of every slice.
cudaError_t attention_row_dot(DType dtype, const void* d_o, const void* o, float* row_dot, const AttentionDims& dims,
                              cudaStream_t stream);

}  // namespace wflops::kernels
