// Checking every CUDA and cuBLAS call. Failures become exceptions carrying the call, the file and
// the error's name, which the harness turns into that benchmark's error (never a crash).
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace wflops {

class CudaError : public std::runtime_error {
 public:
  CudaError(const std::string& what, bool out_of_memory) : std::runtime_error(what), out_of_memory_(out_of_memory) {}
  bool out_of_memory() const { return out_of_memory_; }

 private:
  bool out_of_memory_;
};

// "cudaErrorNoDevice: no CUDA-capable device is detected"
std::string cuda_error_text(cudaError_t e);

void throw_cuda(cudaError_t e, const char* call, const char* file, int line);
void throw_cublas(cublasStatus_t s, const char* call, const char* file, int line);

// An unsupported reason ("" when the case is supported, as the *_unsupported_reason functions give)
// as the exception that refuses the case; the harness reports it as the benchmark's error.
inline void throw_if_unsupported(const std::string& why) {
  if (!why.empty()) throw std::runtime_error(why);
}

}  // namespace wflops

#define CUDA_CHECK(call)                                                                          \
  do {                                                                                            \
    const cudaError_t wflops_err_ = (call);                                                       \
    if (wflops_err_ != cudaSuccess) ::wflops::throw_cuda(wflops_err_, #call, __FILE__, __LINE__); \
  } while (0)

#define CUBLAS_CHECK(call)                                                                                  \
  do {                                                                                                      \
    const cublasStatus_t wflops_st_ = (call);                                                               \
    if (wflops_st_ != CUBLAS_STATUS_SUCCESS) ::wflops::throw_cublas(wflops_st_, #call, __FILE__, __LINE__); \
  } while (0)
