// Grouped-query attention's K/V heads spread over the query heads, as Hugging Face's Llama
// `repeat_kv` does before its eager attention (and as our fused attention engines need, which take
// one head count for Q, K and V):
//   forward   out[b, j, p, :] = kv[b, j / group, p, :]          group = heads / kv_heads
//   backward  dkv[b, g, p, :] = Σ_{r < group} dout[b, g·group + r, p, :]
// the backward's sum in fp32, in order r = 0, 1, ... (the same bits every run), rounded once.
// Layouts [batch, heads, seq, head_dim] row-major (attention_dims.cuh) with kv_heads heads for kv
// and dkv. fp16, bf16 or fp32 storage. One thread per output element.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "dtype.hpp"

namespace wflops::kernels {

struct RepeatKvDims {
  std::size_t batch = 0, heads = 0, kv_heads = 0, seq = 0, head_dim = 0;  // heads a multiple of kv_heads
  std::size_t group() const { return kv_heads ? heads / kv_heads : 0; }
};

cudaError_t repeat_kv_forward(DType dtype, const void* kv, void* out, const RepeatKvDims& dims, cudaStream_t stream);
cudaError_t repeat_kv_backward(DType dtype, const void* dout, void* dkv, const RepeatKvDims& dims, cudaStream_t stream);

// ---- host references, in double ---------------------------------------------------------------------
void repeat_kv_forward_host(const double* kv, double* out, const RepeatKvDims& dims);
void repeat_kv_backward_host(const double* dout, double* dkv, const RepeatKvDims& dims);

}  // namespace wflops::kernels
