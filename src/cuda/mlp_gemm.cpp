#include "cuda/mlp_gemm.hpp"

#include <fmt/core.h>

#include <cstdint>
#include <stdexcept>

#include "cuda/blas_handles.hpp"
#include "cuda/cuda_check.hpp"

namespace wflops {

namespace {

cublasOperation_t op(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

const char* epilogue_name(cublasLtEpilogue_t e) {
  switch (e) {
    case CUBLASLT_EPILOGUE_DEFAULT: return "DEFAULT";
    case CUBLASLT_EPILOGUE_BIAS: return "BIAS";
    case CUBLASLT_EPILOGUE_RELU_AUX_BIAS: return "RELU_AUX_BIAS";
    case CUBLASLT_EPILOGUE_GELU_AUX_BIAS: return "GELU_AUX_BIAS";
    case CUBLASLT_EPILOGUE_DRELU_BGRAD: return "DRELU_BGRAD";
    case CUBLASLT_EPILOGUE_DGELU_BGRAD: return "DGELU_BGRAD";
    case CUBLASLT_EPILOGUE_BGRADA: return "BGRADA";
    case CUBLASLT_EPILOGUE_BGRADB: return "BGRADB";
    default: return "other";
  }
}

bool is_relu_aux(cublasLtEpilogue_t e) {
  return e == CUBLASLT_EPILOGUE_RELU_AUX_BIAS || e == CUBLASLT_EPILOGUE_DRELU_BGRAD;
}
bool is_gelu_aux(cublasLtEpilogue_t e) {
  return e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS || e == CUBLASLT_EPILOGUE_DGELU_BGRAD;
}

}  // namespace

cudaDataType_t mlp_cuda_type(DType t) {
  switch (t) {
    case DType::fp16: return CUDA_R_16F;
    case DType::bf16: return CUDA_R_16BF;
    case DType::fp32: return CUDA_R_32F;
    default: throw std::runtime_error(fmt::format("the MLP step has no {} GEMMs", dtype_name(t)));
  }
}

void gemm_rm(const RowMajorGemm& g, DType in, const void* a, const void* b, DType out, void* c, float beta,
             cudaStream_t stream) {
  const float alpha = 1.0f;
  cublasHandle_t h = cublas_on(stream);
  // Column-major C^T[n, m] = op(B)^T op(A)^T (see the header).
  CUBLAS_CHECK(cublasGemmEx(h, op(g.trans_b), op(g.trans_a), static_cast<int>(g.n), static_cast<int>(g.m),
                            static_cast<int>(g.k), &alpha, b, mlp_cuda_type(in), static_cast<int>(g.ldb()), a,
                            mlp_cuda_type(in), static_cast<int>(g.lda()), &beta, c, mlp_cuda_type(out),
                            static_cast<int>(g.ldc()), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

long lt_aux_ld(bool relu, long rows) {
  const long multiple = relu ? 128 : 8;
  return (rows + multiple - 1) / multiple * multiple;
}

LtGemm::~LtGemm() {
  if (layout_a_) cublasLtMatrixLayoutDestroy(layout_a_);
  if (layout_b_) cublasLtMatrixLayoutDestroy(layout_b_);
  if (layout_d_) cublasLtMatrixLayoutDestroy(layout_d_);
  if (desc_) cublasLtMatmulDescDestroy(desc_);
}

void LtGemm::plan(const Plan& p) {
  p_ = p;
  const RowMajorGemm& g = p.g;
  const std::string where = fmt::format("{} (cuBLASLt epilogue {}, row-major {}x{}x{}, {})", p.what,
                                        epilogue_name(p.epilogue), g.m, g.n, g.k, dtype_name(p.dtype));
  if (is_relu_aux(p.epilogue) && (p.aux_ld % 128 != 0 || p.aux_ld < g.n)) {
    throw std::runtime_error(
        fmt::format("{}: the ReLU bitmask's leading dimension {} must be a multiple of 128 "
                    "and at least {}",
                    where, p.aux_ld, g.n));
  }
  if (is_gelu_aux(p.epilogue) && (p.aux_ld % 8 != 0 || p.aux_ld < g.n)) {
    throw std::runtime_error(
        fmt::format("{}: the GELU input's leading dimension {} must be a multiple of 8 and "
                    "at least {}",
                    where, p.aux_ld, g.n));
  }
  const cudaDataType_t t = mlp_cuda_type(p.dtype);
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  // Operands swapped (see the header): cuBLASLt's A is our B, its B is our A.
  const cublasOperation_t ta = op(g.trans_b), tb = op(g.trans_a);
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_EPILOGUE, &p.epilogue, sizeof p.epilogue));
  if (p.bias) {
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof p.bias));
  }
  if (p.aux) {
    const std::int64_t ld = p.aux_ld;
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &p.aux, sizeof p.aux));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld, sizeof ld));
  }
  // Stored row-major [r, c] is column-major c x r with ld c.
  const long a_rows = g.trans_a ? g.k : g.m, a_cols = g.trans_a ? g.m : g.k;        // our A as stored
  const long b_rows = g.trans_b ? g.n : g.k, b_cols = g.trans_b ? g.k : g.n;        // our B as stored
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout_a_, t, b_cols, b_rows, b_cols));  // cuBLASLt's A = our B
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout_b_, t, a_cols, a_rows, a_cols));  // cuBLASLt's B = our A
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout_d_, t, g.n, g.m, g.n));

  cublasLtMatmulPreference_t pref = nullptr;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const std::uint64_t ws = kBlasWorkspaceBytes;
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  cublasStatus_t st =
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
  if (st == CUBLAS_STATUS_SUCCESS) {
    st = cublasLtMatmulAlgoGetHeuristic(cublaslt_handle(), desc_, layout_a_, layout_b_, layout_d_, layout_d_, pref, 1,
                                        &result, &returned);
  }
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || returned == 0) {
    throw std::runtime_error(
        fmt::format("{}: cuBLASLt offers no algorithm for this shape ({}); cuBLASLt's "
                    "epilogues usually need d and d_ff to be multiples of 8",
                    where, st == CUBLAS_STATUS_SUCCESS ? "no candidates" : cublasGetStatusName(st)));
  }
  algo_ = result.algo;
}

void LtGemm::run(const void* a, const void* b, const void* c, void* d, float beta, cudaStream_t stream) const {
  const float alpha = 1.0f;
  if (!c) {
    c = d;
    beta = 0.0f;
  }
  CUBLAS_CHECK(cublasLtMatmul(cublaslt_handle(), desc_, &alpha, b, layout_a_, a, layout_b_, &beta, c, layout_d_, d,
                              layout_d_, &algo_, blas_workspace(), kBlasWorkspaceBytes, stream));
}

}  // namespace wflops
