// Matrix multiplications: cuBLAS (cublasGemmEx), cuBLASLt (the heuristic's first algorithm, or
// the fastest of its top candidates, timed) and our own WMMA kernel, all in the "TN" layout of
// nn.Linear: A row-major M x K, B row-major N x K, C column-major M x N, C = A * B^T.
//
// fp8 runs in two modes. cuBLASLt's fast accumulation (CUBLASLT_MATMUL_DESC_FAST_ACCUM) skips
// the periodic promotion of partial sums to higher precision: faster, less accurate (cuBLASLt
// documentation, cublasLtMatmulDescAttributes_t). Training frameworks use it for the forward GEMMs
// and not for the gradient GEMMs, so both are benchmarked: `cublaslt`/`cublaslt_auto` without it,
// `cublaslt_fastacc`/`cublaslt_auto_fastacc` with it.
#pragma once
#include <cuda_runtime.h>

#include <memory>
#include <optional>
#include <string>

#include "cuda/harness.hpp"
#include "dtype.hpp"

namespace wflops {

enum class GemmImpl { cublas, cublaslt, cublaslt_auto, cublaslt_fastacc, cublaslt_auto_fastacc, wmma };

// "cublas", "cublaslt", "cublaslt_auto", "cublaslt_fastacc", "cublaslt_auto_fastacc", "wmma"
std::string gemm_impl_name(GemmImpl impl);
bool gemm_impl_supports(GemmImpl impl, DType dtype);

// Element type C is stored in: the input type, except fp8 GEMMs write bf16.
DType gemm_output_type(DType dtype);

struct GemmShape {
  long m = 0, n = 0, k = 0;
};

// "" when the implementation can run this shape, else why not (e.g. fp8 needs multiples of 16).
std::string gemm_unsupported_reason(GemmImpl impl, DType dtype, const GemmShape& shape);

std::unique_ptr<Workload> make_gemm_workload(GemmImpl impl, DType dtype, const GemmShape& shape);

// Checks C = A * B^T (TN layout above) on the device against an fp64 host reference: every
// element must be finite (outputs are poisoned with NaN first), and sampled rows x columns (the
// first, the last and random ones) must match within the dtype's tolerance.
Verification verify_gemm_tn(DType in, DType out, const void* a, const void* b, const void* c, const GemmShape& shape,
                            double tolerance, cudaStream_t stream);

}  // namespace wflops
