// Verification of one MLP step on the device against the fp64 CPU reference (src/reference/mlp_reference.hpp),
// on the real shape: every output and gradient must be finite (they were poisoned with NaN), then
// sampled token rows of y, dh and dx, sampled entries of dW1 and dW2, and every bias-gradient
// entry are compared with the reference within the dtype's tolerance. Mixed precision adds the
// cast (half weights = fp32 masters rounded) and the AdamW update of sampled master weights.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "cuda/harness.hpp"
#include "cuda/mlp_step.hpp"
#include "elementwise/adamw.cuh"

namespace wflops {

// Where one step's data lies on the device (input set 0). Biases and their gradients are null
// without bias; everything after y is ignored for a forward-only config.
struct MlpDeviceView {
  MlpConfig config;
  const void *x = nullptr, *dy = nullptr;                                 // [T, d], config.dtype
  const void *w1 = nullptr, *w2 = nullptr, *b1 = nullptr, *b2 = nullptr;  // config.dtype
  const void *y = nullptr, *dh = nullptr, *dx = nullptr;                  // config.dtype
  // (gated: w1 and dw1 are [2 d_ff, d], dh is [dg | du], [T, 2 d_ff])
  DType grad_dtype = DType::bf16;  // fp32 with mixed precision
  const void *dw1 = nullptr, *dw2 = nullptr, *db1 = nullptr, *db2 = nullptr;
};

Verification check_mlp_step(const MlpDeviceView& v, cudaStream_t stream);

// Mixed precision: the master weights, moments and gradients at sampled flat indices of the
// parameter buffer, before and after one step (moments start at zero, step 1).
struct MasterSample {
  std::vector<std::size_t> index;
  std::vector<double> before;  // fp32 master before the step
};
MasterSample sample_masters(const float* master, const std::vector<std::pair<std::size_t, std::size_t>>& regions,
                            int per_region);
// Checks half = round(master before), and master/m/v after = AdamW(master before, grad, 0, 0).
Verification check_master_update(const MasterSample& s, const kernels::AdamW& opt, DType half_dtype, const void* half,
                                 const float* master, const float* m, const float* v, const float* grad);

}  // namespace wflops
