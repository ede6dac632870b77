#include <cfloat>

#include "moe/moe_common.cuh"
#include "moe/moe_softmax.cuh"

namespace wflops::kernels {

namespace {

constexpr int kThreads = 256;

__global__ void softmax_forward_kernel(const float* logits, float* probs, int experts) {
  __shared__ float scratch[32];
  const float* in = logits + static_cast<std::size_t>(blockIdx.x) * experts;
  float* out = probs + static_cast<std::size_t>(blockIdx.x) * experts;
  float m = -FLT_MAX;
  for (int e = threadIdx.x; e < experts; e += blockDim.x) m = fmaxf(m, in[e]);
  m = moe_detail::block_reduce(m, moe_detail::Max{}, -FLT_MAX, scratch);
  float s = 0;
  for (int e = threadIdx.x; e < experts; e += blockDim.x) s += expf(in[e] - m);
  s = moe_detail::block_reduce(s, moe_detail::Sum{}, 0.0f, scratch);
  const float inv = 1.0f / s;
  for (int e = threadIdx.x; e < experts; e += blockDim.x) out[e] = expf(in[e] - m) * inv;
}

__global__ void softmax_backward_kernel(const float* probs, const int* token_offsets, const int* token_rows,
                                        const int* row_expert, const float* row_dscore, __nv_bfloat16* dlogits,
                                        int experts) {
  __shared__ float scratch[32];
  const std::size_t t = blockIdx.x;
  const float* p = probs + t * experts;
  __nv_bfloat16* out = dlogits + t * experts;
  const int begin = token_offsets[t], end = token_offsets[t + 1];
  float s = 0;
  for (int i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const int r = token_rows[i];
    s += p[row_expert[r]] * row_dscore[r];
  }
  s = moe_detail::block_reduce(s, moe_detail::Sum{}, 0.0f, scratch);
  for (int e = threadIdx.x; e < experts; e += blockDim.x) out[e] = __float2bfloat16(-p[e] * s);
  __syncthreads();  // the experts with a gradient overwrite the value just written
  for (int i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const int r = token_rows[i];
    const int e = row_expert[r];
    out[e] = __float2bfloat16(p[e] * (row_dscore[r] - s));
  }
}

}  // namespace

cudaError_t moe_softmax_forward(const float* logits, float* probs, int tokens, int experts, cudaStream_t stream) {
  if (tokens <= 0 || experts <= 0) return cudaErrorInvalidValue;
  softmax_forward_kernel<<<tokens, kThreads, 0, stream>>>(logits, probs, experts);
  return cudaGetLastError();
}

cudaError_t moe_softmax_backward(const float* probs, const int* token_offsets, const int* token_rows,
                                 const int* row_expert, const float* row_dscore, __nv_bfloat16* dlogits, int tokens,
                                 int experts, cudaStream_t stream) {
  if (tokens <= 0 || experts <= 0) return cudaErrorInvalidValue;
  softmax_backward_kernel<<<tokens, kThreads, 0, stream>>>(probs, token_offsets, token_rows, row_expert, row_dscore,
                                                           dlogits, experts);
  return cudaGetLastError();
}

}  // namespace wflops::kernels
