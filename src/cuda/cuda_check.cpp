#include "cuda/cuda_check.hpp"

#include <fmt/core.h>

namespace wflops {

std::string cuda_error_text(cudaError_t e) {
  return fmt::format("{} ({})", cudaGetErrorName(e), cudaGetErrorString(e));
}

void throw_cuda(cudaError_t e, const char* call, const char* file, int line) {
  // Clear the sticky "last error" of non-fatal errors, so the next benchmark starts clean.
  (void)cudaGetLastError();
  throw CudaError(fmt::format("{} failed: {} at {}:{}", call, cuda_error_text(e), file, line),
                  e == cudaErrorMemoryAllocation);
}

void throw_cublas(cublasStatus_t s, const char* call, const char* file, int line) {
  throw CudaError(
      fmt::format("{} failed: {} ({}) at {}:{}", call, cublasGetStatusName(s), cublasGetStatusString(s), file, line),
      s == CUBLAS_STATUS_ALLOC_FAILED);
}

}  // namespace wflops
