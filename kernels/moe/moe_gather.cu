#include "moe/moe_common.cuh"
#include "moe/moe_gather.cuh"

namespace wflops::kernels {

namespace {

using moe_detail::Bf16x8;
using moe_detail::blocks_for;
using moe_detail::kThreads;

__global__ void gather_kernel(const Bf16x8* x, const int* row_token, std::size_t rows, int vecs, Bf16x8* xp) {
  const std::size_t total = rows * vecs;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::size_t r = i / vecs, c = i % vecs;
    xp[i] = x[static_cast<std::size_t>(row_token[r]) * vecs + c];
  }
}

__global__ void gather_backward_kernel(const Bf16x8* dxp, const int* token_offsets, const int* token_rows,
                                       std::size_t tokens, int vecs, Bf16x8* dx) {
  moe_detail::sum_token_rows<false>(dxp, nullptr, token_offsets, token_rows, tokens, vecs, dx);
}

}  // namespace

cudaError_t moe_gather(const __nv_bfloat16* x, const int* row_token, int rows, int d, __nv_bfloat16* xp,
                       cudaStream_t stream) {
  if (rows < 0 || d <= 0 || d % 8) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const int vecs = d / 8;
  gather_kernel<<<blocks_for(static_cast<std::size_t>(rows) * vecs), kThreads, 0, stream>>>(
      reinterpret_cast<const Bf16x8*>(x), row_token, rows, vecs, reinterpret_cast<Bf16x8*>(xp));
  return cudaGetLastError();
}

cudaError_t moe_gather_backward(const __nv_bfloat16* dxp, const int* token_offsets, const int* token_rows, int tokens,
                                int d, __nv_bfloat16* dx, cudaStream_t stream) {
  if (tokens <= 0 || d <= 0 || d % 8) return cudaErrorInvalidValue;
  const int vecs = d / 8;
  gather_backward_kernel<<<blocks_for(static_cast<std::size_t>(tokens) * vecs), kThreads, 0, stream>>>(
      reinterpret_cast<const Bf16x8*>(dxp), token_offsets, token_rows, tokens, vecs, reinterpret_cast<Bf16x8*>(dx));
  return cudaGetLastError();
}

}  // namespace wflops::kernels
