#include "cuda/attention_unfused.hpp"

#include <cublas_v2.h>

#include <cmath>
#include <stdexcept>

#include "attention/attention_softmax.cuh"
#include "cuda/blas_handles.hpp"
#include "cuda/cuda_check.hpp"

namespace wflops {

namespace {

cudaDataType_t cuda_type(DType t) { return t == DType::fp16 ? CUDA_R_16F : CUDA_R_16BF; }

// One column-major strided-batched GEMM over the b*h slices (fp32 accumulation):
// C[m,n] = op(A) op(B), with per-slice strides in elements.
struct Operand {
  const void* data;
  cublasOperation_t op;
  long ld;
  long long stride;
};
void batched_gemm(DType dtype, long m, long n, long k, Operand a, Operand b, void* c, long ldc, long long stride_c,
                  long batch, cudaStream_t stream) {
  const float one = 1.0f, zero = 0.0f;
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(cublas_on(stream), a.op, b.op, static_cast<int>(m), static_cast<int>(n),
                                          static_cast<int>(k), &one, a.data, cuda_type(dtype), static_cast<int>(a.ld),
                                          a.stride, b.data, cuda_type(dtype), static_cast<int>(b.ld), b.stride, &zero,
                                          c, cuda_type(dtype), static_cast<int>(ldc), stride_c, static_cast<int>(batch),
                                          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

float softmax_scale(const kernels::AttentionDims& dims) {
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(dims.head_dim)));
}

void check_dtype(DType dtype) {
  if (dtype != DType::bf16 && dtype != DType::fp16) {
    throw std::runtime_error("unfused attention supports bf16 and fp16");
  }
}

}  // namespace

// Row-major [s][d] slices are column-major [d][s] to cuBLAS; row-major [s_q][s_k] scores are
// column-major [s_k][s_q]. Each GEMM below is written in that column-major view.
void unfused_attention_forward(DType dtype, const void* q, const void* k, const void* v, void* o,
                               const UnfusedScratch& scratch, const kernels::AttentionDims& dims, cudaStream_t stream,
                               PhaseMarks& marks) {
  check_dtype(dtype);
  const long s = dims.seq, d = dims.head_dim, batch = dims.slices();
  const long long sd = s * d, ss = s * s;
  // S^T[s_k, s_q] = K[s_k, d] * Q^T[d, s_q]
  batched_gemm(dtype, s, s, d, {k, CUBLAS_OP_T, d, sd}, {q, CUBLAS_OP_N, d, sd}, scratch.scores, s, ss, batch, stream);
  marks.mark("gemm");
  CUDA_CHECK(kernels::attention_softmax_forward(dtype, scratch.scores, scratch.probs, scratch.lse, dims,
                                                softmax_scale(dims), stream));
  marks.mark("softmax");
  // O^T[d, s_q] = V^T[d, s_k] * P^T[s_k, s_q]
  batched_gemm(dtype, d, s, s, {v, CUBLAS_OP_N, d, sd}, {scratch.probs, CUBLAS_OP_N, s, ss}, o, d, sd, batch, stream);
  marks.mark("gemm");
}

void unfused_attention_backward(DType dtype, const void* q, const void* k, const void* v, const void* o,
                                const void* d_o, void* dq, void* dk, void* dv, const UnfusedScratch& scratch,
                                const kernels::AttentionDims& dims, cudaStream_t stream, PhaseMarks& marks) {
  check_dtype(dtype);
  const long s = dims.seq, d = dims.head_dim, batch = dims.slices();
  const long long sd = s * d, ss = s * s;
  CUDA_CHECK(kernels::attention_row_dot(dtype, d_o, o, scratch.row_dot, dims, stream));
  marks.mark("softmax");
  // dV^T[d, s_k] = dO^T[d, s_q] * P[s_q, s_k]
  batched_gemm(dtype, d, s, s, {d_o, CUBLAS_OP_N, d, sd}, {scratch.probs, CUBLAS_OP_T, s, ss}, dv, d, sd, batch,
               stream);
  // dP^T[s_k, s_q] = V[s_k, d] * dO^T[d, s_q]
  batched_gemm(dtype, s, s, d, {v, CUBLAS_OP_T, d, sd}, {d_o, CUBLAS_OP_N, d, sd}, scratch.scores, s, ss, batch,
               stream);
  marks.mark("gemm");
  CUDA_CHECK(kernels::attention_softmax_backward(dtype, scratch.probs, scratch.scores, scratch.row_dot, dims,
                                                 softmax_scale(dims), stream));
  marks.mark("softmax");
  // dQ^T[d, s_q] = K^T[d, s_k] * dS^T[s_k, s_q]
  batched_gemm(dtype, d, s, s, {k, CUBLAS_OP_N, d, sd}, {scratch.scores, CUBLAS_OP_N, s, ss}, dq, d, sd, batch, stream);
  // dK^T[d, s_k] = Q^T[d, s_q] * dS[s_q, s_k]
  batched_gemm(dtype, d, s, s, {q, CUBLAS_OP_N, d, sd}, {scratch.scores, CUBLAS_OP_T, s, ss}, dk, d, sd, batch, stream);
  marks.mark("gemm");
}

}  // namespace wflops
