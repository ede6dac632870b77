// Shared by the GPU tests: skip with a reason when this machine has no usable GPU.
#pragma once
#include <gtest/gtest.h>

#include <string>

namespace wflops::testing {
// Empty when a CUDA device can be used; otherwise why not (e.g. "cudaErrorNoDevice: ...").
std::string gpu_unavailable_reason();
}  // namespace wflops::testing

// Use as the first statement of every GPU test: it never passes silently without a GPU.
#define WFLOPS_REQUIRE_GPU()                                                   \
  do {                                                                         \
    const std::string wflops_reason_ = ::wflops::testing::gpu_unavailable_reason(); \
    if (!wflops_reason_.empty()) GTEST_SKIP() << "no GPU: " << wflops_reason_; \
  } while (0)
