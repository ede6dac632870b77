// One cuBLAS and one cuBLASLt handle with one workspace for the whole process, shared by every
// benchmark family (matmul, MLP, attention, MoE). All work runs on the harness's one stream, so
// no two GEMMs use the workspace at the same time.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>

namespace wflops {

// What cuBLASLt's fastest Hopper kernels ask for.
inline constexpr std::size_t kBlasWorkspaceBytes = 32u << 20;

// The cuBLAS handle bound to `stream` with our workspace (cublasSetStream resets a handle's
// workspace to cuBLAS's own pool, so both are set together).
cublasHandle_t cublas_on(cudaStream_t stream);
cublasLtHandle_t cublaslt_handle();
void* blas_workspace();  // kBlasWorkspaceBytes of device memory, for cublasLtMatmul

}  // namespace wflops
