// Token-major <-> head-major copies around the attention core (head_layout.cuh).
#include <cstdint>

#include "model/head_layout.cuh"

namespace wflops::kernels {

namespace {

constexpr int kThreads = 256;

// Token-major unit i (units of U, `per_head` of them per head row) -> its head-major unit.
__host__ __device__ inline std::size_t head_major_unit(std::size_t i, std::size_t per_head, std::size_t heads,
                                                       std::size_t n, std::size_t seq, std::size_t tokens) {
  const std::size_t u = i % per_head;
  std::size_t rest = i / per_head;
  const std::size_t head = rest % heads;
  rest /= heads;
  const std::size_t j = rest % n;
  const std::size_t t = rest / n;
  const std::size_t b = t / seq, p = t - b * seq;
  // Array j holds tokens · heads head rows; (b, head, p) is row (b · heads + head) · seq + p of it.
  return (j * tokens * heads + (b * heads + head) * seq + p) * per_head + u;
}

template <typename U, bool kSplit>
__global__ void __launch_bounds__(kThreads)
    head_copy_kernel(const U* src, U* dst, std::size_t units, std::size_t per_head, std::size_t heads, std::size_t n,
                     std::size_t seq, std::size_t tokens) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < units; i += stride) {
    const std::size_t h = head_major_unit(i, per_head, heads, n, seq, tokens);
    if (kSplit) {
      dst[h] = src[i];
    } else {
      dst[i] = src[h];
    }
  }
}

template <typename U, bool kSplit>
cudaError_t launch_copy(const void* src, void* dst, const HeadLayout& l, std::size_t element_bytes,
                        cudaStream_t stream) {
  const std::size_t per_head = l.head_dim * element_bytes / sizeof(U);
  const std::size_t units = l.elements() * element_bytes / sizeof(U);
  const std::size_t wanted = (units + kThreads - 1) / kThreads;
  const int blocks = static_cast<int>(wanted < 65536 ? (wanted ? wanted : 1) : 65536);
  head_copy_kernel<U, kSplit><<<blocks, kThreads, 0, stream>>>(static_cast<const U*>(src), static_cast<U*>(dst), units,
                                                               per_head, l.heads, l.n, l.seq, l.batch * l.seq);
  return cudaGetLastError();
}

template <bool kSplit>
cudaError_t copy(DType dtype, const void* src, void* dst, const HeadLayout& l, cudaStream_t stream) {
  if (dtype != DType::fp16 && dtype != DType::bf16 && dtype != DType::fp32) return cudaErrorInvalidValue;
  if (l.elements() == 0) return cudaSuccess;
  if (src == nullptr || dst == nullptr) return cudaErrorInvalidValue;
  const std::size_t e = dtype_bytes(dtype);
  const bool aligned =
      reinterpret_cast<std::uintptr_t>(src) % 16 == 0 && reinterpret_cast<std::uintptr_t>(dst) % 16 == 0;
  if (aligned && (l.head_dim * e) % 16 == 0) return launch_copy<uint4, kSplit>(src, dst, l, e, stream);
  if (e == 4) return launch_copy<std::uint32_t, kSplit>(src, dst, l, e, stream);
  return launch_copy<std::uint16_t, kSplit>(src, dst, l, e, stream);
}

}  // namespace

cudaError_t split_heads(DType dtype, const void* token_major, void* head_major, const HeadLayout& l,
                        cudaStream_t stream) {
  return copy<true>(dtype, token_major, head_major, l, stream);
}

cudaError_t merge_heads(DType dtype, const void* head_major, void* token_major, const HeadLayout& l,
                        cudaStream_t stream) {
  return copy<false>(dtype, head_major, token_major, l, stream);
}

std::size_t head_major_index(const HeadLayout& l, std::size_t token_major) {
  return head_major_unit(token_major, l.head_dim, l.heads, l.n, l.seq, l.batch * l.seq);
}

void split_heads_host(const double* token_major, double* head_major, const HeadLayout& l) {
  for (std::size_t i = 0; i < l.elements(); ++i) head_major[head_major_index(l, i)] = token_major[i];
}

void merge_heads_host(const double* head_major, double* token_major, const HeadLayout& l) {
  for (std::size_t i = 0; i < l.elements(); ++i) token_major[i] = head_major[head_major_index(l, i)];
}

}  // namespace wflops::kernels
