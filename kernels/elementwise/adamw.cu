// AdamW on fp32 master weights with fp32 moments: one fused elementwise pass reading param, grad,
// m, v and writing param, m, v (float4 accesses where all four arrays are 16-byte aligned, a
// scalar tail otherwise). The bias corrections are computed once on the host.
#include <cmath>

#include "common/elementwise_vector.cuh"
#include "elementwise/adamw.cuh"

namespace wflops::kernels {

namespace {

struct StepConstants {
  float lr, beta1, beta2, eps, weight_decay;
  float correction1, correction2;  // 1 - beta1^step, 1 - beta2^step
};

// The update of adamw.cuh, in the same order of operations as adamw_step_host.
__device__ __forceinline__ void update(const StepConstants& k, float& p, float g, float& m, float& v) {
  m = k.beta1 * m + (1.0f - k.beta1) * g;
  v = k.beta2 * v + (1.0f - k.beta2) * g * g;
  const float m_hat = m / k.correction1;
  const float v_hat = v / k.correction2;
  p -= k.lr * (m_hat / (sqrtf(v_hat) + k.eps) + k.weight_decay * p);
}

__global__ void adamw_kernel(StepConstants k, float* param, const float* grad, float* m, float* v, std::size_t n,
                             bool vectorised) {
  const std::size_t tid = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t vectors = vectorised ? n / 4 : 0;
  for (std::size_t i = tid; i < vectors; i += stride) {
    float4 p = reinterpret_cast<float4*>(param)[i];
    const float4 g = reinterpret_cast<const float4*>(grad)[i];
    float4 mm = reinterpret_cast<float4*>(m)[i];
    float4 vv = reinterpret_cast<float4*>(v)[i];
    update(k, p.x, g.x, mm.x, vv.x);
    update(k, p.y, g.y, mm.y, vv.y);
    update(k, p.z, g.z, mm.z, vv.z);
    update(k, p.w, g.w, mm.w, vv.w);
    reinterpret_cast<float4*>(param)[i] = p;
    reinterpret_cast<float4*>(m)[i] = mm;
    reinterpret_cast<float4*>(v)[i] = vv;
  }
  for (std::size_t i = vectors * 4 + tid; i < n; i += stride) update(k, param[i], grad[i], m[i], v[i]);
}

}  // namespace

cudaError_t adamw_step(const AdamW& opt, int step, float* param, const float* grad, float* m, float* v, std::size_t n,
                       cudaStream_t stream) {
  if (step < 1) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (param == nullptr || grad == nullptr || m == nullptr || v == nullptr) return cudaErrorInvalidValue;
  const StepConstants k{opt.lr,
                        opt.beta1,
                        opt.beta2,
                        opt.eps,
                        opt.weight_decay,
                        static_cast<float>(1.0 - std::pow(static_cast<double>(opt.beta1), step)),
                        static_cast<float>(1.0 - std::pow(static_cast<double>(opt.beta2), step))};
  const bool vectorised = vec::aligned16(param) && vec::aligned16(grad) && vec::aligned16(m) && vec::aligned16(v);
  const std::size_t items = vectorised ? n / 4 + 1 : n;
  adamw_kernel<<<vec::blocks_for(items), vec::kThreads, 0, stream>>>(k, param, grad, m, v, n, vectorised);
  return cudaGetLastError();
}

void adamw_step_host(const AdamW& opt, int step, double& param, double grad, double& m, double& v) {
  const double b1 = opt.beta1, b2 = opt.beta2;
  m = b1 * m + (1.0 - b1) * grad;
  v = b2 * v + (1.0 - b2) * grad * grad;
  const double m_hat = m / (1.0 - std::pow(b1, step));
  const double v_hat = v / (1.0 - std::pow(b2, step));
  param -= static_cast<double>(opt.lr) * (m_hat / (std::sqrt(v_hat) + opt.eps) + opt.weight_decay * param);
}

}  // namespace wflops::kernels
