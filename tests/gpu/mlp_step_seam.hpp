// A test seam of the MLP step workload: the check inside its verify() must fail when the step's
// input changes after the step. Production code never changes it, so the hook that lets a test do
// so is declared here only, not in src/cuda/mlp_step.hpp (src/cuda/mlp_step.cpp defines it).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <functional>
#include <memory>

#include "common/fill_random.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/harness.hpp"
#include "cuda/mlp_step.hpp"

namespace wflops {

// Called by verify() between the step and the check, with the step's input x (input set 0,
// `elements` values of the configuration's dtype).
using AfterVerifiedStep = std::function<void(void* x, std::size_t elements, cudaStream_t stream)>;
std::unique_ptr<Workload> make_mlp_workload(const MlpConfig& c, AfterVerifiedStep after_step);

namespace testing {

// An MLP step workload whose verify() overwrites x with fresh random values after the step, so the
// check compares the step's output against a reference of other inputs.
inline std::unique_ptr<Workload> make_mlp_workload_corrupting_input(const MlpConfig& c) {
  return make_mlp_workload(c, [dtype = c.dtype](void* x, std::size_t elements, cudaStream_t stream) {
    CUDA_CHECK(kernels::fill_random(dtype, x, elements, fresh_seed(), stream));
  });
}

}  // namespace testing

}  // namespace wflops
