// Token + position embedding, forward and deterministic backward (embedding.cuh), and the
// double-precision host references beside them.
#include <cstdint>

#include "common/dtype_dispatch.cuh"
#include "model/embedding.cuh"
#include "model/row_common.cuh"
#include "moe/moe_permute.cuh"

namespace wflops::kernels {

namespace {

constexpr int kRunThreads = 256;
constexpr std::size_t kAlign = 256;  // each workspace array starts 256-byte aligned, as CUB asks

constexpr std::size_t kArrays = 4;  // workspace: keys, positions, sorted ids, sorted positions

std::size_t aligned_up(std::size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// Keys run over [0, vocab], vocab standing for every id outside the table.
int key_bits(std::size_t vocab) { return moe_key_bits(static_cast<int>(vocab) + 1); }

template <typename T, int W>
__global__ void forward_kernel(const int* tokens, const T* wte, const T* wpe, T* out, std::size_t n_tokens,
                               std::size_t seq, std::size_t vocab, std::size_t d) {
  const std::size_t per_row = d / W, n = n_tokens * per_row;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    const std::size_t t = i / per_row, c = (i - t * per_row) * W;
    const int id = tokens[t];
    float x[W] = {};
    if (id >= 0 && static_cast<std::size_t>(id) < vocab) rows::load<W>(wte + id * d + c, x);
    if (wpe != nullptr) {
      float p[W];
      rows::load<W>(wpe + (t % seq) * d + c, p);
#pragma unroll
      for (int j = 0; j < W; ++j) x[j] += p[j];
    }
    rows::store<W>(out + t * d + c, x);
  }
}

// The sort's input: keys = the ids, with any id outside [0, vocab) replaced by vocab (sorted last,
// skipped by the run pass), and values = the positions 0..T-1.
__global__ void sort_input_kernel(const int* tokens, int* keys, int* positions, int n, int vocab) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const int id = tokens[i];
    keys[i] = id >= 0 && id < vocab ? id : vocab;
    positions[i] = i;
  }
}

// Block i of the sorted ids: if it starts a run of equal ids, it adds the run's rows of dout (in
// position order, the radix sort being stable) column by column and adds the sums into dwte.
template <typename T, int W>
__global__ void __launch_bounds__(kRunThreads)
    token_grad_kernel(const int* sorted_ids, const int* sorted_positions, const T* dout, float* dwte,
                      std::size_t n_tokens, std::size_t vocab, std::size_t d) {
  const std::size_t i = blockIdx.x;
  const int id = sorted_ids[i];
  if ((i > 0 && sorted_ids[i - 1] == id) || static_cast<std::size_t>(id) >= vocab) return;  // id >= 0 here
  std::size_t end = i + 1;
  while (end < n_tokens && sorted_ids[end] == id) ++end;
  const std::size_t step = blockDim.x * static_cast<std::size_t>(W);
  for (std::size_t c = threadIdx.x * static_cast<std::size_t>(W); c < d; c += step) {
    float sum[W] = {};
    for (std::size_t k = i; k < end; ++k) {
      float x[W];
      rows::load<W>(dout + static_cast<std::size_t>(sorted_positions[k]) * d + c, x);
#pragma unroll
      for (int j = 0; j < W; ++j) sum[j] += x[j];
    }
    float* g = dwte + id * d + c;
#pragma unroll
    for (int j = 0; j < W; ++j) g[j] += sum[j];
  }
}

template <typename T, int W>
__global__ void position_grad_kernel(const T* dout, float* dwpe, std::size_t batches, std::size_t seq, std::size_t d) {
  const std::size_t per_row = d / W, n = seq * per_row;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    const std::size_t p = i / per_row, c = (i - p * per_row) * W;
    float sum[W] = {};
    for (std::size_t b = 0; b < batches; ++b) {
      float x[W];
      rows::load<W>(dout + (b * seq + p) * d + c, x);
#pragma unroll
      for (int j = 0; j < W; ++j) sum[j] += x[j];
    }
    float* g = dwpe + p * d + c;
#pragma unroll
    for (int j = 0; j < W; ++j) g[j] += sum[j];
  }
}

bool shape_ok(std::size_t n_tokens, std::size_t seq, std::size_t vocab, std::size_t d) {
  return seq > 0 && d > 0 && vocab > 0 && n_tokens % seq == 0 && n_tokens <= 0x7fffffffu && vocab < 0x7fffffffu;
}

template <typename T>
cudaError_t forward_typed(const int* tokens, const void* wte, const void* wpe, void* out, std::size_t n_tokens,
                          std::size_t seq, std::size_t vocab, std::size_t d, cudaStream_t stream) {
  constexpr int W = vec::kWidth<T>;
  const bool vectorised =
      d % W == 0 && vec::aligned16(wte) && (wpe == nullptr || vec::aligned16(wpe)) && vec::aligned16(out);
  const T* e = static_cast<const T*>(wte);
  const T* p = static_cast<const T*>(wpe);
  T* o = static_cast<T*>(out);
  if (vectorised) {
    forward_kernel<T, W>
        <<<vec::blocks_for(n_tokens * (d / W)), vec::kThreads, 0, stream>>>(tokens, e, p, o, n_tokens, seq, vocab, d);
  } else {
    forward_kernel<T, 1>
        <<<vec::blocks_for(n_tokens * d), vec::kThreads, 0, stream>>>(tokens, e, p, o, n_tokens, seq, vocab, d);
  }
  return cudaGetLastError();
}

template <typename T, int W>
cudaError_t grads_launch(const int* sorted_ids, const int* sorted_positions, const void* dout, float* dwte, float* dwpe,
                         std::size_t n_tokens, std::size_t seq, std::size_t vocab, std::size_t d, cudaStream_t stream) {
  const T* g = static_cast<const T*>(dout);
  const int threads = rows::row_threads(d / W, kRunThreads);
  token_grad_kernel<T, W><<<static_cast<unsigned>(n_tokens), threads, 0, stream>>>(sorted_ids, sorted_positions, g,
                                                                                   dwte, n_tokens, vocab, d);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess || dwpe == nullptr) return e;
  position_grad_kernel<T, W>
      <<<vec::blocks_for(seq * (d / W)), vec::kThreads, 0, stream>>>(g, dwpe, n_tokens / seq, seq, d);
  return cudaGetLastError();
}

template <typename T>
cudaError_t grads_typed(const int* sorted_ids, const int* sorted_positions, const void* dout, float* dwte, float* dwpe,
                        std::size_t n_tokens, std::size_t seq, std::size_t vocab, std::size_t d, cudaStream_t stream) {
  constexpr int W = vec::kWidth<T>;
  const bool vectorised = d % W == 0 && vec::aligned16(dout);
  return vectorised
             ? grads_launch<T, W>(sorted_ids, sorted_positions, dout, dwte, dwpe, n_tokens, seq, vocab, d, stream)
             : grads_launch<T, 1>(sorted_ids, sorted_positions, dout, dwte, dwpe, n_tokens, seq, vocab, d, stream);
}

}  // namespace

cudaError_t embedding_forward(DType dtype, const int* tokens, const void* wte, const void* wpe, void* out,
                              std::size_t n_tokens, std::size_t seq, std::size_t vocab, std::size_t d,
                              cudaStream_t stream) {
  if (!shape_ok(n_tokens, seq, vocab, d)) return cudaErrorInvalidValue;
  if (n_tokens == 0) return cudaSuccess;
  if (tokens == nullptr || wte == nullptr || out == nullptr) return cudaErrorInvalidValue;
  return dispatch_float_types(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return forward_typed<T>(tokens, wte, wpe, out, n_tokens, seq, vocab, d, stream);
  });
}

cudaError_t embedding_backward_workspace_bytes(std::size_t n_tokens, std::size_t vocab, std::size_t* bytes) {
  if (bytes == nullptr || n_tokens == 0 || n_tokens > 0x7fffffffu || vocab == 0 || vocab >= 0x7fffffffu)
    return cudaErrorInvalidValue;
  const int n = static_cast<int>(n_tokens);
  std::size_t sort_bytes = 0;
  const cudaError_t e =
      moe_sort_pairs(nullptr, &sort_bytes, nullptr, nullptr, nullptr, nullptr, n, key_bits(vocab), nullptr);
  if (e != cudaSuccess) return e;
  *bytes = kArrays * aligned_up(n_tokens * sizeof(int)) + aligned_up(sort_bytes);
  return cudaSuccess;
}

cudaError_t embedding_backward(DType dtype, const int* tokens, const void* dout, float* dwte, float* dwpe,
                               std::size_t n_tokens, std::size_t seq, std::size_t vocab, std::size_t d, void* workspace,
                               std::size_t workspace_bytes, cudaStream_t stream) {
  if (!shape_ok(n_tokens, seq, vocab, d)) return cudaErrorInvalidValue;
  if (n_tokens == 0) return cudaSuccess;
  std::size_t needed = 0;
  cudaError_t e = embedding_backward_workspace_bytes(n_tokens, vocab, &needed);
  if (e != cudaSuccess) return e;
  if (tokens == nullptr || dout == nullptr || dwte == nullptr || workspace == nullptr || workspace_bytes < needed ||
      reinterpret_cast<std::uintptr_t>(workspace) % kAlign != 0)
    return cudaErrorInvalidValue;
  const int n = static_cast<int>(n_tokens);
  const std::size_t array = aligned_up(n_tokens * sizeof(int));
  char* w = static_cast<char*>(workspace);
  int* keys = reinterpret_cast<int*>(w);
  int* positions = reinterpret_cast<int*>(w + array);
  int* sorted_ids = reinterpret_cast<int*>(w + 2 * array);
  int* sorted_positions = reinterpret_cast<int*>(w + 3 * array);
  void* sort_temp = w + kArrays * array;
  std::size_t sort_bytes = needed - kArrays * array;
  sort_input_kernel<<<vec::blocks_for(n_tokens), vec::kThreads, 0, stream>>>(tokens, keys, positions, n,
                                                                             static_cast<int>(vocab));
  if ((e = cudaGetLastError()) != cudaSuccess) return e;
  if ((e = moe_sort_pairs(sort_temp, &sort_bytes, keys, sorted_ids, positions, sorted_positions, n, key_bits(vocab),
                          stream)) != cudaSuccess)
    return e;
  return dispatch_float_types(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return grads_typed<T>(sorted_ids, sorted_positions, dout, dwte, dwpe, n_tokens, seq, vocab, d, stream);
  });
}

void embedding_forward_host(const int* tokens, const double* wte, const double* wpe, std::size_t n_tokens,
                            std::size_t seq, std::size_t vocab, std::size_t d, double* out) {
  for (std::size_t t = 0; t < n_tokens; ++t) {
    const bool valid = tokens[t] >= 0 && static_cast<std::size_t>(tokens[t]) < vocab;
    for (std::size_t c = 0; c < d; ++c) {
      out[t * d + c] = (valid ? wte[static_cast<std::size_t>(tokens[t]) * d + c] : 0.0) +
                       (wpe != nullptr ? wpe[(t % seq) * d + c] : 0.0);
    }
  }
}

void embedding_backward_host(const int* tokens, const double* dout, std::size_t n_tokens, std::size_t seq,
                             std::size_t vocab, std::size_t d, double* dwte, double* dwpe) {
  for (std::size_t t = 0; t < n_tokens; ++t) {
    const bool valid = tokens[t] >= 0 && static_cast<std::size_t>(tokens[t]) < vocab;
    for (std::size_t c = 0; c < d; ++c) {
      if (valid) dwte[static_cast<std::size_t>(tokens[t]) * d + c] += dout[t * d + c];
      if (dwpe != nullptr) dwpe[(t % seq) * d + c] += dout[t * d + c];
    }
  }
}

}  // namespace wflops::kernels
