#include "moe/moe_combine.cuh"
#include "moe/moe_common.cuh"

namespace wflops::kernels {

namespace {

using moe_detail::Bf16x8;
using moe_detail::blocks_for;
using moe_detail::kThreads;

__global__ void combine_kernel(const Bf16x8* eo, const float* row_score, const int* token_offsets,
                               const int* token_rows, std::size_t tokens, int vecs, Bf16x8* y) {
  moe_detail::sum_token_rows<true>(eo, row_score, token_offsets, token_rows, tokens, vecs, y);
}

__global__ void combine_backward_kernel(const Bf16x8* dy, const Bf16x8* eo, const int* row_token,
                                        const float* row_score, int rows, int vecs, Bf16x8* deo, float* d_score) {
  const int lane = threadIdx.x & 31;
  const int warps_per_block = blockDim.x >> 5;
  for (int r = blockIdx.x * warps_per_block + (threadIdx.x >> 5); r < rows; r += gridDim.x * warps_per_block) {
    const std::size_t t = static_cast<std::size_t>(row_token[r]);
    const float s = row_score[r];
    float dot = 0;
    for (int c = lane; c < vecs; c += 32) {
      const Bf16x8 g = dy[t * vecs + c];
      const Bf16x8 o = eo[static_cast<std::size_t>(r) * vecs + c];
      Bf16x8 out;
      for (int q = 0; q < 8; ++q) {
        const float gq = __bfloat162float(g.v[q]);
        dot += gq * __bfloat162float(o.v[q]);
        out.v[q] = __float2bfloat16(s * gq);
      }
      deo[static_cast<std::size_t>(r) * vecs + c] = out;
    }
    dot = moe_detail::warp_reduce(dot, moe_detail::Sum{});
    if (lane == 0) d_score[r] = dot;
  }
}

}  // namespace

cudaError_t moe_combine(const __nv_bfloat16* expert_out, const float* row_score, const int* token_offsets,
                        const int* token_rows, int tokens, int d, __nv_bfloat16* y, cudaStream_t stream) {
  if (tokens <= 0 || d <= 0 || d % 8) return cudaErrorInvalidValue;
  const int vecs = d / 8;
  combine_kernel<<<blocks_for(static_cast<std::size_t>(tokens) * vecs), kThreads, 0, stream>>>(
      reinterpret_cast<const Bf16x8*>(expert_out), row_score, token_offsets, token_rows, tokens, vecs,
      reinterpret_cast<Bf16x8*>(y));
  return cudaGetLastError();
}

cudaError_t moe_combine_backward(const __nv_bfloat16* dy, const __nv_bfloat16* expert_out, const int* row_token,
                                 const float* row_score, int rows, int d, __nv_bfloat16* d_expert_out, float* d_score,
                                 cudaStream_t stream) {
  if (rows < 0 || d <= 0 || d % 8) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const int warps_per_block = kThreads / 32;
  const long blocks = (static_cast<long>(rows) + warps_per_block - 1) / warps_per_block;
  combine_backward_kernel<<<static_cast<unsigned>(blocks < (1L << 20) ? blocks : (1L << 20)), kThreads, 0, stream>>>(
      reinterpret_cast<const Bf16x8*>(dy), reinterpret_cast<const Bf16x8*>(expert_out), row_token, row_score, rows,
      d / 8, reinterpret_cast<Bf16x8*>(d_expert_out), d_score);
  return cudaGetLastError();
}

}  // namespace wflops::kernels
