#include "moe/moe_common.cuh"
#include "moe/moe_gelu.cuh"

namespace wflops::kernels {

namespace {

using moe_detail::blocks_for;
using moe_detail::kThreads;
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;

__global__ void gelu_forward_kernel(const __nv_bfloat16* h, __nv_bfloat16* out, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const float x = __bfloat162float(h[i]);
    const float th = tanhf(kSqrt2OverPi * (x + kCubic * x * x * x));
    out[i] = __float2bfloat16(0.5f * x * (1.0f + th));
  }
}

__global__ void gelu_backward_kernel(const __nv_bfloat16* da, const __nv_bfloat16* h, __nv_bfloat16* dh,
                                     std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const float x = __bfloat162float(h[i]);
    const float th = tanhf(kSqrt2OverPi * (x + kCubic * x * x * x));
    const float deriv =
        0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * kSqrt2OverPi * (1.0f + 3.0f * kCubic * x * x);
    dh[i] = __float2bfloat16(__bfloat162float(da[i]) * deriv);
  }
}

}  // namespace

cudaError_t moe_gelu_forward(const __nv_bfloat16* h, __nv_bfloat16* out, std::size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  gelu_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(h, out, n);
  return cudaGetLastError();
}

cudaError_t moe_gelu_backward(const __nv_bfloat16* da, const __nv_bfloat16* h, __nv_bfloat16* dh, std::size_t n,
                              cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  gelu_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(da, h, dh, n);
  return cudaGetLastError();
}

}  // namespace wflops::kernels
