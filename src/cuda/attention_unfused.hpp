// Unfused attention: cuBLAS strided-batched GEMMs over whole score matrices, with our softmax
// kernels between them (kernels/attention/attention_softmax.cuh). Layouts [b, h, s, d] row-major for Q, K, V,
// O and gradients; the score matrices [b*h*s][s]. Every call throws CudaError on a failure.
#pragma once
#include <cuda_runtime.h>

#include "attention/attention_dims.cuh"
#include "cuda/harness.hpp"
#include "dtype.hpp"

namespace wflops {

// The score-sized buffers (b*h*s^2 elements each) and statistics the unfused path needs.
struct UnfusedScratch {
  void* scores = nullptr;    // S in the forward; dP, then dS (in place) in the backward
  void* probs = nullptr;     // P, written by the forward, read by the backward
  float* lse = nullptr;      // [b*h*s]
  float* row_dot = nullptr;  // D = rowsum(dO * O), [b*h*s]
};

// S = Q K^T (GEMM), P = softmax(S / sqrt(d)) with the causal mask (kernel), O = P V (GEMM).
// `marks` (may record) gets the parts "gemm" and "softmax".
void unfused_attention_forward(DType dtype, const void* q, const void* k, const void* v, void* o,
                               const UnfusedScratch& scratch, const kernels::AttentionDims& dims, cudaStream_t stream,
                               PhaseMarks& marks);

// D = rowsum(dO * O); dV = P^T dO; dP = dO V^T; dS = P (dP - D) / sqrt(d); dQ = dS K; dK = dS^T Q.
// Needs the forward's P in scratch.probs.
void unfused_attention_backward(DType dtype, const void* q, const void* k, const void* v, const void* o,
                                const void* d_o, void* dq, void* dk, void* dv, const UnfusedScratch& scratch,
                                const kernels::AttentionDims& dims, cudaStream_t stream, PhaseMarks& marks);

}  // namespace wflops
