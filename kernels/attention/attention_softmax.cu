#include <algorithm>
#include <cmath>

#include "attention/attention_softmax.cuh"
#include "common/elementwise_vector.cuh"

namespace wflops::kernels {

namespace {

constexpr int kThreads = 256;

using vec::from_float;
using vec::to_float;

// Reduces over the block (kThreads threads); every thread gets the result.
template <bool kMax>
__device__ float block_reduce(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = kMax ? fmaxf(v, other) : v + other;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // scratch may still be read by a previous reduction
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = scratch[0];
  for (int w = 1; w < kThreads / 32; ++w) v = kMax ? fmaxf(v, scratch[w]) : v + scratch[w];
  return v;
}

// One block per row. Three passes over the row (max, sum, write): simple, and the row stays in L2.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    softmax_forward_kernel(const T* scores, T* probs, float* lse, long seq, bool causal, float scale) {
  __shared__ float scratch[kThreads / 32];
  const long row = blockIdx.x;
  const long query = row % seq;
  const long visible = causal ? query + 1 : seq;  // keys 0 .. visible-1 are seen
  const T* in = scores + row * seq;
  T* out = probs + row * seq;
  float max = -INFINITY;
  for (long j = threadIdx.x; j < visible; j += kThreads) max = fmaxf(max, scale * to_float(in[j]));
  max = block_reduce<true>(max, scratch);
  float sum = 0;
  for (long j = threadIdx.x; j < visible; j += kThreads) sum += __expf(scale * to_float(in[j]) - max);
  sum = block_reduce<false>(sum, scratch);
  const bool any = visible > 0 && sum > 0;
  const float inv = any ? 1.0f / sum : 0.0f;
  // Every thread has read its elements of the row before the reductions' barriers, so writing
  // over the input (probs == scores) is safe.
  for (long j = threadIdx.x; j < seq; j += kThreads) {
    const float p = j < visible ? __expf(scale * to_float(in[j]) - max) * inv : 0.0f;
    out[j] = from_float<T>(p);
  }
  if (threadIdx.x == 0) lse[row] = any ? max + logf(sum) : INFINITY;
}

template <typename T>
__global__ void softmax_backward_kernel(const T* probs, T* dp_to_ds, const float* row_dot, long seq, long count,
                                        float scale) {
  for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long>(gridDim.x) * blockDim.x) {
    const float p = to_float(probs[i]);
    const float dp = to_float(dp_to_ds[i]);
    dp_to_ds[i] = from_float<T>(scale * p * (dp - row_dot[i / seq]));
  }
}

// One warp per row.
template <typename T>
__global__ void row_dot_kernel(const T* d_o, const T* o, float* row_dot, long rows, long head_dim) {
  const long row = blockIdx.x * static_cast<long>(blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  float sum = 0;
  for (long c = lane; c < head_dim; c += 32) sum += to_float(d_o[row * head_dim + c]) * to_float(o[row * head_dim + c]);
  for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
  if (lane == 0) row_dot[row] = sum;
}

bool supported(DType dtype, const AttentionDims& dims) {
  return (dtype == DType::bf16 || dtype == DType::fp16) && dims.seq > 0 && dims.slices() > 0 &&
         dims.rows() <= 0x7fffffffL;
}

}  // namespace

cudaError_t attention_softmax_forward(DType dtype, const void* scores, void* probs, float* lse,
                                      const AttentionDims& dims, float scale, cudaStream_t stream) {
  if (!supported(dtype, dims)) return cudaErrorInvalidValue;
  const unsigned grid = static_cast<unsigned>(dims.rows());
  if (dtype == DType::bf16) {
    softmax_forward_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(scores),
                                                          static_cast<__nv_bfloat16*>(probs), lse, dims.seq,
                                                          dims.causal, scale);
  } else {
    softmax_forward_kernel<<<grid, kThreads, 0, stream>>>(
        static_cast<const __half*>(scores), static_cast<__half*>(probs), lse, dims.seq, dims.causal, scale);
  }
  return cudaGetLastError();
}

cudaError_t attention_softmax_backward(DType dtype, const void* probs, void* dp_to_ds, const float* row_dot,
                                       const AttentionDims& dims, float scale, cudaStream_t stream) {
  if (!supported(dtype, dims)) return cudaErrorInvalidValue;
  const long count = dims.rows() * dims.seq;
  const unsigned grid = static_cast<unsigned>(std::min<long>((count + 255) / 256, 65536L * 16));
  if (dtype == DType::bf16) {
    softmax_backward_kernel<<<grid, 256, 0, stream>>>(static_cast<const __nv_bfloat16*>(probs),
                                                      static_cast<__nv_bfloat16*>(dp_to_ds), row_dot, dims.seq, count,
                                                      scale);
  } else {
    softmax_backward_kernel<<<grid, 256, 0, stream>>>(static_cast<const __half*>(probs), static_cast<__half*>(dp_to_ds),
                                                      row_dot, dims.seq, count, scale);
  }
  return cudaGetLastError();
}

cudaError_t attention_row_dot(DType dtype, const void* d_o, const void* o, float* row_dot, const AttentionDims& dims,
                              cudaStream_t stream) {
  if (!supported(dtype, dims) || dims.head_dim <= 0) return cudaErrorInvalidValue;
  constexpr int kRowsPerBlock = 8;
  const unsigned grid = static_cast<unsigned>((dims.rows() + kRowsPerBlock - 1) / kRowsPerBlock);
  if (dtype == DType::bf16) {
    row_dot_kernel<<<grid, 32 * kRowsPerBlock, 0, stream>>>(static_cast<const __nv_bfloat16*>(d_o),
                                                            static_cast<const __nv_bfloat16*>(o), row_dot, dims.rows(),
                                                            dims.head_dim);
  } else {
    row_dot_kernel<<<grid, 32 * kRowsPerBlock, 0, stream>>>(
        static_cast<const __half*>(d_o), static_cast<const __half*>(o), row_dot, dims.rows(), dims.head_dim);
  }
  return cudaGetLastError();
}

}  // namespace wflops::kernels
