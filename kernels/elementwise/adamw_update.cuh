// The AdamW update that adamw.cu and adamw_multi.cu both apply, in the order of operations of
// adamw_step_host (adamw.cuh). Included only by .cu files.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>

#include "elementwise/adamw.cuh"

namespace wflops::kernels::adamw_detail {

struct StepConstants {
  float lr, beta1, beta2, eps, weight_decay;
  float correction1, correction2;  // 1 - beta1^step, 1 - beta2^step
};

// The step's constants; the bias corrections are computed once, on the host, in double.
inline StepConstants step_constants(const AdamW& opt, int step) {
  return {opt.lr,
          opt.beta1,
          opt.beta2,
          opt.eps,
          opt.weight_decay,
          static_cast<float>(1.0 - std::pow(static_cast<double>(opt.beta1), step)),
          static_cast<float>(1.0 - std::pow(static_cast<double>(opt.beta2), step))};
}

// One element; wd is the weight decay this tensor gets.
__device__ __forceinline__ void update(const StepConstants& k, float wd, float& p, float g, float& m, float& v) {
  m = k.beta1 * m + (1.0f - k.beta1) * g;
  v = k.beta2 * v + (1.0f - k.beta2) * g * g;
  const float m_hat = m / k.correction1;
  const float v_hat = v / k.correction2;
  p -= k.lr * (m_hat / (sqrtf(v_hat) + k.eps) + wd * p);
}

// Elements i .. i+3 with float4 accesses (every array 16-byte aligned at i); returns the updated
// parameters.
__device__ __forceinline__ float4 update4(const StepConstants& k, float wd, float* param, const float* grad, float* m,
                                          float* v, std::size_t i) {
  float4 p = *reinterpret_cast<float4*>(param + i);
  const float4 g = *reinterpret_cast<const float4*>(grad + i);
  float4 mm = *reinterpret_cast<float4*>(m + i);
  float4 vv = *reinterpret_cast<float4*>(v + i);
  update(k, wd, p.x, g.x, mm.x, vv.x);
  update(k, wd, p.y, g.y, mm.y, vv.y);
  update(k, wd, p.z, g.z, mm.z, vv.z);
  update(k, wd, p.w, g.w, mm.w, vv.w);
  *reinterpret_cast<float4*>(param + i) = p;
  *reinterpret_cast<float4*>(m + i) = mm;
  *reinterpret_cast<float4*>(v + i) = vv;
  return p;
}

}  // namespace wflops::kernels::adamw_detail
