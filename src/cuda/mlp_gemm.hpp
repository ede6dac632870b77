// The GEMMs of the MLP step, written in row-major terms (PyTorch's layout) on top of cuBLAS's
// column-major API.
//
// The mapping, once: a row-major r x c array with row length ld, read column-major with leading
// dimension ld, is the c x r matrix S^T. So the row-major product C[M,N] = op(A)[M,K] op(B)[K,N]
// is the column-major product C^T[N,M] = op(B)^T op(A)^T: we call cuBLAS with the operands swapped
// (B first), m = N, n = M, the same transpose flags, and each ld = the row length of the stored
// array (A stored [M,K] or, transposed, [K,M]; B stored [K,N] or [N,K]; C stored [M,N]).
// In cuBLASLt's terms the row-major bias over C's columns (one per output feature) is a bias over
// D's rows, and a bias gradient summed over C's rows M is BGRADB's (D's columns).
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "dtype.hpp"

namespace wflops {

// C[m, n] = op(A)[m, k] op(B)[k, n], row-major, op = transpose when trans_*.
struct RowMajorGemm {
  bool trans_a = false, trans_b = false;
  long m = 0, n = 0, k = 0;
  long lda() const { return trans_a ? m : k; }
  long ldb() const { return trans_b ? k : n; }
  long ldc() const { return n; }
};

cudaDataType_t mlp_cuda_type(DType t);  // fp32, fp16, bf16

// cublasGemmEx with fp32 accumulation: C (type `out`, fp32 for mixed precision's weight gradients)
// = alpha op(A) op(B) + beta C, A and B of type `in`.
void gemm_rm(const RowMajorGemm& g, DType in, const void* a, const void* b, DType out, void* c, float beta,
             cudaStream_t stream);

// One cuBLASLt GEMM with an epilogue, planned once (descriptor, layouts, the heuristic's first
// algorithm) and run many times: D = op(A) op(B) + beta C, then the epilogue.
class LtGemm {
 public:
  struct Plan {
    RowMajorGemm g;
    DType dtype = DType::bf16;  // A, B, C, D, bias and GELU aux alike
    cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    const void* bias = nullptr;  // bias (BIAS epilogues) or bias gradient output (BGRAD ones)
    void* aux = nullptr;         // ReLU bitmask or GELU pre-activation, [M rows, aux_ld] row-major
    long aux_ld = 0;             // in elements (bits for ReLU)
    const char* what = "";       // for error messages, e.g. "forward GEMM 1"
  };
  LtGemm() = default;
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  // Throws std::runtime_error naming the GEMM and the shape when cuBLASLt has no algorithm for it.
  void plan(const Plan& p);
  // c may be null (beta is then ignored); d is the output.
  void run(const void* a, const void* b, const void* c, void* d, float beta, cudaStream_t stream) const;

 private:
  Plan p_{};
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t layout_a_ = nullptr, layout_b_ = nullptr, layout_d_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
};

// Leading dimension (elements) of an epilogue's aux matrix with `rows` rows per token: cuBLASLt
// wants a multiple of 128 bits for ReLU's bitmask and of 8 elements for GELU's pre-activation.
long lt_aux_ld(bool relu, long rows);

}  // namespace wflops
