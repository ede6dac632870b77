// The optimizer step of mixed-precision training: AdamW on fp32 master weights with fp32 state
// (first and second moments), one fused elementwise pass.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace wflops::kernels {

struct AdamW {
  float lr = 1e-4f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
};

// For each i (step counts from 1; bias corrections 1 - beta^step):
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr * (m / (1 - b1^step) / (sqrt(v / (1 - b2^step)) + eps) + wd * p)
cudaError_t adamw_step(const AdamW& opt, int step, float* param, const float* grad, float* m, float* v, std::size_t n,
                       cudaStream_t stream);

// The same update on the host, in double (reference and tests).
void adamw_step_host(const AdamW& opt, int step, double& param, double grad, double& m, double& v);

}  // namespace wflops::kernels
