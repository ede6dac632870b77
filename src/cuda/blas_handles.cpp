#include "cuda/blas_handles.hpp"

#include "cuda/cuda_check.hpp"

namespace wflops {

namespace {

// Created on first use (after the harness chose the device) and deliberately never destroyed:
// tearing them down after the CUDA runtime at exit is a known crash.
struct Handles {
  cublasHandle_t blas = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* workspace = nullptr;
};

Handles& handles() {
  static Handles h = [] {
    Handles x;
    CUBLAS_CHECK(cublasCreate(&x.blas));
    CUBLAS_CHECK(cublasLtCreate(&x.lt));
    CUDA_CHECK(cudaMalloc(&x.workspace, kBlasWorkspaceBytes));
    return x;
  }();
  return h;
}

}  // namespace

cublasHandle_t cublas_on(cudaStream_t stream) {
  Handles& h = handles();
  CUBLAS_CHECK(cublasSetStream(h.blas, stream));
  CUBLAS_CHECK(cublasSetWorkspace(h.blas, h.workspace, kBlasWorkspaceBytes));
  return h.blas;
}

cublasLtHandle_t cublaslt_handle() { return handles().lt; }

void* blas_workspace() { return handles().workspace; }

}  // namespace wflops
