// AdamW on fp32 master weights with fp32 moments: one fused elementwise pass reading param, grad,
// m, v and writing param, m, v (float4 accesses where all four arrays are 16-byte aligned, a
// scalar tail otherwise). The bias corrections are computed once on the host.
#include <cmath>

#include "common/elementwise_vector.cuh"
#include "elementwise/adamw.cuh"
#include "elementwise/adamw_update.cuh"

namespace wflops::kernels {

namespace {

using adamw_detail::StepConstants;
using adamw_detail::update;
using adamw_detail::update4;

__global__ void adamw_kernel(StepConstants k, float* param, const float* grad, float* m, float* v, std::size_t n,
                             bool vectorised) {
  const std::size_t tid = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t vectors = vectorised ? n / 4 : 0;
  for (std::size_t i = tid; i < vectors; i += stride) update4(k, k.weight_decay, param, grad, m, v, 4 * i);
  for (std::size_t i = vectors * 4 + tid; i < n; i += stride) update(k, k.weight_decay, param[i], grad[i], m[i], v[i]);
}

}  // namespace

cudaError_t adamw_step(const AdamW& opt, int step, float* param, const float* grad, float* m, float* v, std::size_t n,
                       cudaStream_t stream) {
  if (step < 1) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (param == nullptr || grad == nullptr || m == nullptr || v == nullptr) return cudaErrorInvalidValue;
  const StepConstants k = adamw_detail::step_constants(opt, step);
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
