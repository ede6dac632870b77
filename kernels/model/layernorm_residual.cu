// Residual add + LayerNorm, forward and backward (layernorm_residual.cuh), and the double-precision
// host references beside them. One block per row: a row of d ≤ 6144 elements is 12 KiB of bf16,
// small enough for one block to own it and hand each thread a few 16-byte vectors, and the
// statistics are block reductions in a fixed order, so every result is the same run to run.
#include <cmath>

#include "common/dtype_dispatch.cuh"
#include "model/layernorm_residual.cuh"
#include "model/row_common.cuh"

namespace wflops::kernels {

namespace {

constexpr int kThreads = 256;           // most threads one row's block gets
constexpr std::size_t kPartials = 512;  // most blocks of the backward, and so rows of partials

// Shared memory holds a row (or a block's column sums) as W planes of d / W floats (rows::plane).
using rows::plane;

template <typename T, int W>
__global__ void __launch_bounds__(kThreads) forward_kernel(const T* a, const T* b, T* s, const T* gamma, const T* beta,
                                                           T* y, float* mean, float* rstd, int d, float eps) {
  extern __shared__ float row[];
  __shared__ float scratch[2 * rows::kMaxWarps];
  const int vectors = d / W;
  const std::size_t base = blockIdx.x * static_cast<std::size_t>(d);
  const float sum = rows::stage_residual_row<W>(a, b, s, base, vectors, row, [](float x) { return x; });
  const float m = rows::block_sum(sum, scratch) / static_cast<float>(d);
  // Two passes (mean, then squared deviations) rather than Σx² - (Σx)²/d: the row is in shared
  // memory anyway, and the subtraction cannot cancel away the variance of a row with a large mean.
  float squares = 0.0f;
  for (int v = threadIdx.x; v < vectors; v += blockDim.x) {
#pragma unroll
    for (int j = 0; j < W; ++j) {
      const float dev = row[plane(j, vectors, v)] - m;
      squares += dev * dev;
    }
  }
  const float rs = rsqrtf(rows::block_sum(squares, scratch) / static_cast<float>(d) + eps);
  for (int v = threadIdx.x; v < vectors; v += blockDim.x) {
    float g[W], bt[W], out[W];
    rows::load<W>(gamma + v * W, g);
    rows::load<W>(beta + v * W, bt);
#pragma unroll
    for (int j = 0; j < W; ++j) out[j] = (row[plane(j, vectors, v)] - m) * rs * g[j] + bt[j];
    rows::store<W>(y + base + v * W, out);
  }
  if (threadIdx.x == 0) {
    mean[blockIdx.x] = m;
    rstd[blockIdx.x] = rs;
  }
}

// Stage one of the backward: block p owns rows p, p + gridDim.x, ... . For each it writes ds and
// adds dy * xhat and dy into its per-column sums (each thread owns fixed columns, so no atomics);
// at the end it writes those sums as row p of the partials: [gridDim.x][2][d], dgamma then dbeta.
template <typename T, int W>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(const T* dy, const T* s, const T* gamma, const float* mean, const float* rstd, const T* dres, T* ds,
                    float* partial, std::size_t n_rows, int d) {
  extern __shared__ float sums[];  // 2 d: dgamma's planes, then dbeta's
  __shared__ float scratch[2 * rows::kMaxWarps];
  const int vectors = d / W;
  for (int v = threadIdx.x; v < vectors; v += blockDim.x) {
#pragma unroll
    for (int j = 0; j < W; ++j) sums[plane(j, vectors, v)] = sums[d + plane(j, vectors, v)] = 0.0f;
  }
  const float inv_d = 1.0f / static_cast<float>(d);
  for (std::size_t r = blockIdx.x; r < n_rows; r += gridDim.x) {
    const std::size_t base = r * static_cast<std::size_t>(d);
    const float m = mean[r], rs = rstd[r];
    float g_sum = 0.0f, gx_sum = 0.0f;
    rows::for_each_element<W>(dy, s, gamma, base, vectors, [&](int k, float dyj, float xj, float gj) {
      const float xhat = (xj - m) * rs, gdy = dyj * gj;
      g_sum += gdy;
      gx_sum += gdy * xhat;
      sums[k] += dyj * xhat;
      sums[d + k] += dyj;
    });
    // The barrier inside also orders every thread's reads of this row before any write of ds, so
    // ds may alias dy.
    rows::block_sum2(g_sum, gx_sum, scratch);
    const float g_mean = g_sum * inv_d, gx_mean = gx_sum * inv_d;
    rows::write_input_grad<W>(dy, s, gamma, dres, ds, base, vectors, [=](float dyj, float xj, float gj) {
      const float xhat = (xj - m) * rs;
      return rs * (dyj * gj - g_mean - xhat * gx_mean);
    });
  }
  float* mine = partial + blockIdx.x * 2 * static_cast<std::size_t>(d);
  for (int v = threadIdx.x; v < vectors; v += blockDim.x) {
#pragma unroll
    for (int j = 0; j < W; ++j) {
      mine[v * W + j] = sums[plane(j, vectors, v)];
      mine[d + v * W + j] = sums[d + plane(j, vectors, v)];
    }
  }
}

// Stage two is rows::reduce_partials<2>: the 2 d columns of the partials, dgamma's then dbeta's.

bool aligned(const void* p) { return p == nullptr || vec::aligned16(p); }

bool shape_ok(std::size_t rows, std::size_t d) { return d > 0 && d <= kLayerNormMaxDim && rows <= 0x7fffffffu; }

std::size_t partial_count(std::size_t rows) { return rows < kPartials ? rows : kPartials; }

template <typename T, int W>
cudaError_t forward_launch(const void* a, const void* b, void* s, const void* gamma, const void* beta, void* y,
                           float* mean, float* rstd, std::size_t rows, std::size_t d, float eps, cudaStream_t stream) {
  const int threads = rows::row_threads(d / W, kThreads);
  forward_kernel<T, W><<<static_cast<unsigned>(rows), threads, d * sizeof(float), stream>>>(
      static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(s), static_cast<const T*>(gamma),
      static_cast<const T*>(beta), static_cast<T*>(y), mean, rstd, static_cast<int>(d), eps);
  return cudaGetLastError();
}

template <typename T>
cudaError_t forward_typed(const void* a, const void* b, void* s, const void* gamma, const void* beta, void* y,
                          float* mean, float* rstd, std::size_t rows, std::size_t d, float eps, cudaStream_t stream) {
  constexpr int W = vec::kWidth<T>;
  const bool vectorised =
      d % W == 0 && aligned(a) && aligned(b) && aligned(s) && aligned(gamma) && aligned(beta) && aligned(y);
  return vectorised ? forward_launch<T, W>(a, b, s, gamma, beta, y, mean, rstd, rows, d, eps, stream)
                    : forward_launch<T, 1>(a, b, s, gamma, beta, y, mean, rstd, rows, d, eps, stream);
}

template <typename T, int W>
cudaError_t backward_launch(const void* dy, const void* s, const void* gamma, const float* mean, const float* rstd,
                            const void* dres, void* ds, float* dgamma, float* dbeta, bool accumulate, float* partial,
                            std::size_t rows, std::size_t d, cudaStream_t stream) {
  const int threads = rows::row_threads(d / W, kThreads);
  const std::size_t blocks = partial_count(rows);
  backward_kernel<T, W><<<static_cast<unsigned>(blocks), threads, 2 * d * sizeof(float), stream>>>(
      static_cast<const T*>(dy), static_cast<const T*>(s), static_cast<const T*>(gamma), mean, rstd,
      static_cast<const T*>(dres), static_cast<T*>(ds), partial, rows, static_cast<int>(d));
  const cudaError_t e = cudaGetLastError();
  return e != cudaSuccess ? e : rows::reduce_partials<2>(partial, blocks, d, dgamma, dbeta, accumulate, stream);
}

template <typename T>
cudaError_t backward_typed(const void* dy, const void* s, const void* gamma, const float* mean, const float* rstd,
                           const void* dres, void* ds, float* dgamma, float* dbeta, bool accumulate, float* partial,
                           std::size_t rows, std::size_t d, cudaStream_t stream) {
  constexpr int W = vec::kWidth<T>;
  const bool vectorised = d % W == 0 && aligned(dy) && aligned(s) && aligned(gamma) && aligned(dres) && aligned(ds);
  return vectorised ? backward_launch<T, W>(dy, s, gamma, mean, rstd, dres, ds, dgamma, dbeta, accumulate, partial,
                                            rows, d, stream)
                    : backward_launch<T, 1>(dy, s, gamma, mean, rstd, dres, ds, dgamma, dbeta, accumulate, partial,
                                            rows, d, stream);
}

}  // namespace

cudaError_t residual_layernorm_forward(DType dtype, const void* a, const void* b, void* s, const void* gamma,
                                       const void* beta, void* y, float* mean, float* rstd, std::size_t rows,
                                       std::size_t d, float eps, cudaStream_t stream) {
  if (!shape_ok(rows, d)) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  if (a == nullptr || gamma == nullptr || beta == nullptr || y == nullptr || mean == nullptr || rstd == nullptr ||
      (b != nullptr && s == nullptr) || y == a || y == b || y == s)
    return cudaErrorInvalidValue;
  return dispatch_float_types(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return forward_typed<T>(a, b, s, gamma, beta, y, mean, rstd, rows, d, eps, stream);
  });
}

std::size_t layernorm_backward_workspace_bytes(std::size_t rows, std::size_t d) {
  return partial_count(rows) * 2 * d * sizeof(float);
}

cudaError_t layernorm_backward(DType dtype, const void* dy, const void* s, const void* gamma, const float* mean,
                               const float* rstd, const void* d_residual, void* ds, float* dgamma, float* dbeta,
                               bool accumulate, void* workspace, std::size_t rows, std::size_t d, cudaStream_t stream) {
  if (!shape_ok(rows, d)) return cudaErrorInvalidValue;
  if (dy == nullptr || s == nullptr || gamma == nullptr || mean == nullptr || rstd == nullptr || ds == nullptr ||
      dgamma == nullptr || dbeta == nullptr || (rows > 0 && workspace == nullptr) || !vec::aligned16(workspace))
    return cudaErrorInvalidValue;
  if (rows == 0) {  // no rows: the gradients of gamma and beta are zero
    if (accumulate) return cudaSuccess;
    cudaError_t e = cudaMemsetAsync(dgamma, 0, d * sizeof(float), stream);
    return e != cudaSuccess ? e : cudaMemsetAsync(dbeta, 0, d * sizeof(float), stream);
  }
  float* partial = static_cast<float*>(workspace);
  return dispatch_float_types(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return backward_typed<T>(dy, s, gamma, mean, rstd, d_residual, ds, dgamma, dbeta, accumulate, partial, rows, d,
                             stream);
  });
}

void residual_layernorm_forward_host(const double* a, const double* b, const double* gamma, const double* beta,
                                     std::size_t rows, std::size_t d, double eps, double* s, double* y, double* mean,
                                     double* rstd) {
  for (std::size_t r = 0; r < rows; ++r) {
    double* sr = s + r * d;
    double sum = 0;
    for (std::size_t c = 0; c < d; ++c) {
      sr[c] = a[r * d + c] + (b != nullptr ? b[r * d + c] : 0.0);
      sum += sr[c];
    }
    const double m = sum / static_cast<double>(d);
    double squares = 0;
    for (std::size_t c = 0; c < d; ++c) squares += (sr[c] - m) * (sr[c] - m);
    const double rs = 1.0 / std::sqrt(squares / static_cast<double>(d) + eps);
    for (std::size_t c = 0; c < d; ++c) y[r * d + c] = (sr[c] - m) * rs * gamma[c] + beta[c];
    mean[r] = m;
    rstd[r] = rs;
  }
}

void layernorm_backward_host(const double* dy, const double* s, const double* gamma, const double* mean,
                             const double* rstd, const double* d_residual, std::size_t rows, std::size_t d, double* ds,
                             double* dgamma, double* dbeta) {
  for (std::size_t c = 0; c < d; ++c) dgamma[c] = dbeta[c] = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    const double* dyr = dy + r * d;
    const double* sr = s + r * d;
    double g_mean = 0, gx_mean = 0;
    for (std::size_t c = 0; c < d; ++c) {
      const double xhat = (sr[c] - mean[r]) * rstd[r];
      g_mean += dyr[c] * gamma[c];
      gx_mean += dyr[c] * gamma[c] * xhat;
      dgamma[c] += dyr[c] * xhat;
      dbeta[c] += dyr[c];
    }
    g_mean /= static_cast<double>(d);
    gx_mean /= static_cast<double>(d);
    for (std::size_t c = 0; c < d; ++c) {
      const double xhat = (sr[c] - mean[r]) * rstd[r];
      ds[r * d + c] = (d_residual != nullptr ? d_residual[r * d + c] : 0.0) +
                      rstd[r] * (dyr[c] * gamma[c] - g_mean - xhat * gx_mean);
    }
  }
}

}  // namespace wflops::kernels
