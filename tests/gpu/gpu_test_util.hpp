// Shared by the GPU tests: skip with a reason when this machine has no usable GPU.
#pragma once
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <string>

#include "cuda/harness.hpp"

namespace wflops::testing {
// Empty when a CUDA device can be used; otherwise why not (e.g. "cudaErrorNoDevice: ...").
std::string gpu_unavailable_reason();

// A CUDA stream for one test, destroyed with it.
class TestStream {
 public:
  TestStream();
  ~TestStream();
  TestStream(const TestStream&) = delete;
  TestStream& operator=(const TestStream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

// What the harness does before timing, on a workload of a test's own: allocates two input sets,
// tunes, verifies (returned), then launches once on the second set and waits, so a launch that
// fails after a passing verification fails the test too.
Verification verify_then_launch(Workload& w, cudaStream_t stream);

// Causal attention in bf16 with head dim 64, device pointers of the first (batch, head) slice: its
// row 0 sees key 0 alone, so O's row 0 must equal V's row 0 and its log-sum-exp L must be that one
// scaled score q0 . k0 / sqrt(64) (wflops' L convention, and cuDNN's Stats).
void expect_first_causal_row(const void* q, const void* k, const void* v, const void* o, const float* lse);
}  // namespace wflops::testing

// Use as the first statement of every GPU test (or of its fixture's SetUp, as KernelCaseTest in
// model_kernel_test_util.hpp does): it never passes silently without a GPU.
#define WFLOPS_REQUIRE_GPU()                                                        \
  do {                                                                              \
    const std::string wflops_reason_ = ::wflops::testing::gpu_unavailable_reason(); \
    if (!wflops_reason_.empty()) GTEST_SKIP() << "no GPU: " << wflops_reason_;      \
  } while (0)
