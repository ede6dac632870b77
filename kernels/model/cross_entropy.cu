// Fused softmax + cross-entropy, forward and backward (cross_entropy.cuh), and its double-precision
// host reference. One block per token row. The first sweep keeps, per thread, a running maximum m
// and the sum s of exp(z - m) over what it has seen, rescaling s by exp(m_old - m_new) when the
// maximum grows (the "online softmax" of Milakov & Gimelshein, arXiv:1805.02867); the block then
// merges the threads' (m, s) pairs in a fixed order. The second sweep writes the gradient.
// Reading the row twice costs little: a 50257-logit bf16 row is 100 KB, read again straight after.
#include <cmath>

#include "common/dtype_dispatch.cuh"
#include "model/cross_entropy.cuh"
#include "model/row_common.cuh"

namespace wflops::kernels {

namespace {

constexpr int kThreads = 512;

// (m, s) <- the pair for the union of two sets of logits. An empty set is (-inf, 0); the guards keep
// exp(-inf - -inf) = NaN out. Commutative in floating point, so both lanes of a shuffle agree.
__device__ __forceinline__ void merge(float& m, float& s, float other_m, float other_s) {
  const float top = fmaxf(m, other_m);
  if (top == -INFINITY) return;
  s = (m == -INFINITY ? 0.0f : s * __expf(m - top)) + (other_m == -INFINITY ? 0.0f : other_s * __expf(other_m - top));
  m = top;
}

template <typename T, int W>
__global__ void __launch_bounds__(kThreads)
    cross_entropy_kernel(const T* logits, T* dlogits, const int* targets, float* losses, std::size_t vocab,
                         std::size_t ld, float scale) {
  __shared__ float scratch[2 * rows::kMaxWarps];
  const std::size_t row = blockIdx.x;
  const T* z = logits + row * ld;
  // A target outside [0, vocab) is ignored like a negative one: nothing past the row is read.
  const int target = targets[row] >= 0 && static_cast<std::size_t>(targets[row]) < vocab ? targets[row] : -1;
  // Read before the barrier below: with dlogits == logits another thread overwrites it afterwards.
  const float z_target = threadIdx.x == 0 && target >= 0 ? vec::to_float(z[target]) : 0.0f;
  const std::size_t vectors = ld / W;

  float m = -INFINITY, s = 0.0f;
  for (std::size_t v = threadIdx.x; v < vectors && v * W < vocab; v += blockDim.x) {
    const std::size_t c = v * W;
    float x[W];
    rows::load<W>(z + c, x);
    float top = m;  // c < vocab: at least x[0] counts, so top is finite
#pragma unroll
    for (int j = 0; j < W; ++j) {
      if (c + j < vocab) top = fmaxf(top, x[j]);
    }
    s *= __expf(m - top);  // exp(-inf) = 0 on the first vector
#pragma unroll
    for (int j = 0; j < W; ++j) {
      if (c + j < vocab) s += __expf(x[j] - top);
    }
    m = top;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float other_m = __shfl_xor_sync(0xffffffffu, m, o), other_s = __shfl_xor_sync(0xffffffffu, s, o);
    merge(m, s, other_m, other_s);
  }
  const int warp = threadIdx.x / 32;
  if (threadIdx.x % 32 == 0) {
    scratch[warp] = m;
    scratch[rows::kMaxWarps + warp] = s;
  }
  __syncthreads();  // also: every read of the row's first sweep is done before any write below
  m = -INFINITY;
  s = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) merge(m, s, scratch[w], scratch[rows::kMaxWarps + w]);

  if (threadIdx.x == 0) losses[row] = target >= 0 ? logf(s) + m - z_target : 0.0f;
  if (dlogits == nullptr) return;
  T* dz = dlogits + row * ld;
  const float inv = 1.0f / s;
  for (std::size_t v = threadIdx.x; v < vectors; v += blockDim.x) {
    const std::size_t c = v * W;
    float x[W];
    if (c < vocab && target >= 0) {
      rows::load<W>(z + c, x);
#pragma unroll
      for (int j = 0; j < W; ++j) {
        const float p = c + j < vocab ? __expf(x[j] - m) * inv : 0.0f;
        x[j] = (p - (c + j == static_cast<std::size_t>(target) ? 1.0f : 0.0f)) * scale;
      }
    } else {  // padding columns, or an ignored token
#pragma unroll
      for (int j = 0; j < W; ++j) x[j] = 0.0f;
    }
    rows::store<W>(dz + c, x);
  }
}

__global__ void __launch_bounds__(rows::kMaxThreads) mean_kernel(const float* x, std::size_t n, float* mean) {
  __shared__ float scratch[2 * rows::kMaxWarps];
  float t = 0.0f;
  for (std::size_t i = threadIdx.x; i < n; i += blockDim.x) t += x[i];
  t = rows::block_sum(t, scratch);
  if (threadIdx.x == 0) *mean = t / static_cast<float>(n);
}

template <typename T, int W>
cudaError_t launch(const void* logits, void* dlogits, const int* targets, float* losses, std::size_t tokens,
                   std::size_t vocab, std::size_t ld, float scale, cudaStream_t stream) {
  const int threads = rows::row_threads((ld + W - 1) / W, kThreads);
  cross_entropy_kernel<T, W><<<static_cast<unsigned>(tokens), threads, 0, stream>>>(
      static_cast<const T*>(logits), static_cast<T*>(dlogits), targets, losses, vocab, ld, scale);
  return cudaGetLastError();
}

template <typename T>
cudaError_t typed(const void* logits, void* dlogits, const int* targets, float* losses, std::size_t tokens,
                  std::size_t vocab, std::size_t ld, float scale, cudaStream_t stream) {
  constexpr int W = vec::kWidth<T>;
  const bool vectorised = ld % W == 0 && vec::aligned16(logits) && (dlogits == nullptr || vec::aligned16(dlogits));
  return vectorised ? launch<T, W>(logits, dlogits, targets, losses, tokens, vocab, ld, scale, stream)
                    : launch<T, 1>(logits, dlogits, targets, losses, tokens, vocab, ld, scale, stream);
}

}  // namespace

cudaError_t softmax_cross_entropy(DType dtype, const void* logits, void* dlogits, const int* targets, float* losses,
                                  std::size_t tokens, std::size_t vocab, std::size_t ld, float scale,
                                  cudaStream_t stream) {
  if (vocab == 0 || ld < vocab || tokens > 0x7fffffffu) return cudaErrorInvalidValue;
  if (tokens == 0) return cudaSuccess;
  if (logits == nullptr || targets == nullptr || losses == nullptr) return cudaErrorInvalidValue;
  return dispatch_float_types(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return typed<T>(logits, dlogits, targets, losses, tokens, vocab, ld, scale, stream);
  });
}

cudaError_t mean_loss(const float* losses, std::size_t n, float* mean, cudaStream_t stream) {
  if (n == 0 || losses == nullptr || mean == nullptr) return cudaErrorInvalidValue;
  mean_kernel<<<1, rows::kMaxThreads, 0, stream>>>(losses, n, mean);
  return cudaGetLastError();
}

double softmax_cross_entropy_host(const double* logits, std::size_t vocab, int target, double scale, double* dlogits) {
  if (target < 0 || static_cast<std::size_t>(target) >= vocab) {  // ignored, as the kernel does
    if (dlogits != nullptr) {
      for (std::size_t j = 0; j < vocab; ++j) dlogits[j] = 0;
    }
    return 0;
  }
  double m = logits[0];
  for (std::size_t j = 1; j < vocab; ++j) m = std::fmax(m, logits[j]);
  double s = 0;
  for (std::size_t j = 0; j < vocab; ++j) s += std::exp(logits[j] - m);
  if (dlogits != nullptr) {
    for (std::size_t j = 0; j < vocab; ++j) {
      dlogits[j] = scale * (std::exp(logits[j] - m) / s - (j == static_cast<std::size_t>(target) ? 1.0 : 0.0));
    }
  }
  return std::log(s) + m - logits[target];
}

}  // namespace wflops::kernels
