// Residual add + RMSNorm, forward and backward (rmsnorm_residual.cuh), and the double-precision
// host references. The same shape as layernorm_residual.cu (one block per row, the row or the
// per-column sums in shared memory as W planes, fixed-order block sums, two-stage dgamma), with one
// statistic instead of two and no beta.
#include <cmath>

#include "common/dtype_dispatch.cuh"
#include "model/rmsnorm_residual.cuh"
#include "model/row_common.cuh"

namespace wflops::kernels {

namespace {

constexpr int kThreads = 256;
constexpr std::size_t kPartials = 512;

// The row, or the per-column sums, in shared memory as W planes (rows::plane).
using rows::plane;

template <typename T, int W>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const T* a, const T* b, T* s, const T* gamma, T* y, float* rrms, int d, float eps) {
  extern __shared__ float row[];
  __shared__ float scratch[2 * rows::kMaxWarps];
  const int vectors = d / W;
  const std::size_t base = blockIdx.x * static_cast<std::size_t>(d);
  const float squares = rows::stage_residual_row<W>(a, b, s, base, vectors, row, [](float x) { return x * x; });
  const float r = rsqrtf(rows::block_sum(squares, scratch) / static_cast<float>(d) + eps);
  for (int v = threadIdx.x; v < vectors; v += blockDim.x) {
    float g[W], out[W];
    rows::load<W>(gamma + v * W, g);
#pragma unroll
    for (int j = 0; j < W; ++j) out[j] = row[plane(j, vectors, v)] * r * g[j];
    rows::store<W>(y + base + v * W, out);
  }
  if (threadIdx.x == 0) rrms[blockIdx.x] = r;
}

// Block p owns rows p, p + gridDim.x, ...; writes ds and its per-column Σ dy xhat as row p of the
// partials [gridDim.x][d].
template <typename T, int W>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(const T* dy, const T* s, const T* gamma, const float* rrms, const T* dres, T* ds, float* partial,
                    std::size_t n_rows, int d) {
  extern __shared__ float sums[];  // d
  __shared__ float scratch[2 * rows::kMaxWarps];
  const int vectors = d / W;
  for (int v = threadIdx.x; v < vectors; v += blockDim.x) {
#pragma unroll
    for (int j = 0; j < W; ++j) sums[plane(j, vectors, v)] = 0.0f;
  }
  for (std::size_t r = blockIdx.x; r < n_rows; r += gridDim.x) {
    const std::size_t base = r * static_cast<std::size_t>(d);
    const float rr = rrms[r];
    float gx_sum = 0.0f;
    rows::for_each_element<W>(dy, s, gamma, base, vectors, [&](int k, float dyj, float xj, float gj) {
      const float xhat = xj * rr;
      gx_sum += dyj * gj * xhat;
      sums[k] += dyj * xhat;
    });
    // The barrier inside orders this row's reads before any write of ds (ds may alias dy).
    const float gx_mean = rows::block_sum(gx_sum, scratch) / static_cast<float>(d);
    rows::write_input_grad<W>(dy, s, gamma, dres, ds, base, vectors,
                              [=](float dyj, float xj, float gj) { return rr * (dyj * gj - xj * rr * gx_mean); });
  }
  float* mine = partial + blockIdx.x * static_cast<std::size_t>(d);
  for (int v = threadIdx.x; v < vectors; v += blockDim.x) {
#pragma unroll
    for (int j = 0; j < W; ++j) mine[v * W + j] = sums[plane(j, vectors, v)];
  }
}

// Stage two is rows::reduce_partials<1>: the d columns of the partials, dgamma's.

bool aligned(const void* p) { return p == nullptr || vec::aligned16(p); }
bool shape_ok(std::size_t rows, std::size_t d) { return d > 0 && d <= kRmsNormMaxDim && rows <= 0x7fffffffu; }
std::size_t partial_count(std::size_t rows) { return rows < kPartials ? rows : kPartials; }

template <typename T, int W>
cudaError_t forward_launch(const void* a, const void* b, void* s, const void* gamma, void* y, float* rrms,
                           std::size_t rows, std::size_t d, float eps, cudaStream_t stream) {
  const int threads = rows::row_threads(d / W, kThreads);
  forward_kernel<T, W><<<static_cast<unsigned>(rows), threads, d * sizeof(float), stream>>>(
      static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(s), static_cast<const T*>(gamma),
      static_cast<T*>(y), rrms, static_cast<int>(d), eps);
  return cudaGetLastError();
}

template <typename T>
cudaError_t forward_typed(const void* a, const void* b, void* s, const void* gamma, void* y, float* rrms,
                          std::size_t rows, std::size_t d, float eps, cudaStream_t stream) {
  constexpr int W = vec::kWidth<T>;
  const bool vectorised = d % W == 0 && aligned(a) && aligned(b) && aligned(s) && aligned(gamma) && aligned(y);
  return vectorised ? forward_launch<T, W>(a, b, s, gamma, y, rrms, rows, d, eps, stream)
                    : forward_launch<T, 1>(a, b, s, gamma, y, rrms, rows, d, eps, stream);
}

template <typename T, int W>
cudaError_t backward_launch(const void* dy, const void* s, const void* gamma, const float* rrms, const void* dres,
                            void* ds, float* dgamma, bool accumulate, float* partial, std::size_t rows, std::size_t d,
                            cudaStream_t stream) {
  const int threads = rows::row_threads(d / W, kThreads);
  const std::size_t blocks = partial_count(rows);
  backward_kernel<T, W><<<static_cast<unsigned>(blocks), threads, d * sizeof(float), stream>>>(
      static_cast<const T*>(dy), static_cast<const T*>(s), static_cast<const T*>(gamma), rrms,
      static_cast<const T*>(dres), static_cast<T*>(ds), partial, rows, static_cast<int>(d));
  const cudaError_t e = cudaGetLastError();
  return e != cudaSuccess ? e : rows::reduce_partials<1>(partial, blocks, d, dgamma, nullptr, accumulate, stream);
}

template <typename T>
cudaError_t backward_typed(const void* dy, const void* s, const void* gamma, const float* rrms, const void* dres,
                           void* ds, float* dgamma, bool accumulate, float* partial, std::size_t rows, std::size_t d,
                           cudaStream_t stream) {
  constexpr int W = vec::kWidth<T>;
  const bool vectorised = d % W == 0 && aligned(dy) && aligned(s) && aligned(gamma) && aligned(dres) && aligned(ds);
  return vectorised ? backward_launch<T, W>(dy, s, gamma, rrms, dres, ds, dgamma, accumulate, partial, rows, d, stream)
                    : backward_launch<T, 1>(dy, s, gamma, rrms, dres, ds, dgamma, accumulate, partial, rows, d, stream);
}

}  // namespace

cudaError_t residual_rmsnorm_forward(DType dtype, const void* a, const void* b, void* s, const void* gamma, void* y,
                                     float* rrms, std::size_t rows, std::size_t d, float eps, cudaStream_t stream) {
  if (!shape_ok(rows, d)) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  if (a == nullptr || gamma == nullptr || y == nullptr || rrms == nullptr || (b != nullptr && s == nullptr) || y == a ||
      y == b || y == s)
    return cudaErrorInvalidValue;
  return dispatch_float_types(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return forward_typed<T>(a, b, s, gamma, y, rrms, rows, d, eps, stream);
  });
}

std::size_t rmsnorm_backward_workspace_bytes(std::size_t rows, std::size_t d) {
  return partial_count(rows) * d * sizeof(float);
}

cudaError_t rmsnorm_backward(DType dtype, const void* dy, const void* s, const void* gamma, const float* rrms,
                             const void* d_residual, void* ds, float* dgamma, bool accumulate, void* workspace,
                             std::size_t rows, std::size_t d, cudaStream_t stream) {
  if (!shape_ok(rows, d)) return cudaErrorInvalidValue;
  if (dy == nullptr || s == nullptr || gamma == nullptr || rrms == nullptr || ds == nullptr || dgamma == nullptr ||
      (rows > 0 && workspace == nullptr) || !vec::aligned16(workspace))
    return cudaErrorInvalidValue;
  if (rows == 0) return accumulate ? cudaSuccess : cudaMemsetAsync(dgamma, 0, d * sizeof(float), stream);
  float* partial = static_cast<float*>(workspace);
  return dispatch_float_types(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return backward_typed<T>(dy, s, gamma, rrms, d_residual, ds, dgamma, accumulate, partial, rows, d, stream);
  });
}

void residual_rmsnorm_forward_host(const double* a, const double* b, const double* gamma, std::size_t rows,
                                   std::size_t d, double eps, double* s, double* y, double* rrms) {
  for (std::size_t r = 0; r < rows; ++r) {
    double squares = 0;
    for (std::size_t c = 0; c < d; ++c) {
      s[r * d + c] = a[r * d + c] + (b != nullptr ? b[r * d + c] : 0.0);
      squares += s[r * d + c] * s[r * d + c];
    }
    rrms[r] = 1.0 / std::sqrt(squares / static_cast<double>(d) + eps);
    for (std::size_t c = 0; c < d; ++c) y[r * d + c] = s[r * d + c] * rrms[r] * gamma[c];
  }
}

void rmsnorm_backward_host(const double* dy, const double* s, const double* gamma, const double* rrms,
                           const double* d_residual, std::size_t rows, std::size_t d, double* ds, double* dgamma) {
  for (std::size_t c = 0; c < d; ++c) dgamma[c] = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    double gx_mean = 0;
    for (std::size_t c = 0; c < d; ++c) {
      const double xhat = s[r * d + c] * rrms[r];
      gx_mean += dy[r * d + c] * gamma[c] * xhat;
      dgamma[c] += dy[r * d + c] * xhat;
    }
    gx_mean /= static_cast<double>(d);
    for (std::size_t c = 0; c < d; ++c) {
      const double xhat = s[r * d + c] * rrms[r];
      ds[r * d + c] =
          (d_residual != nullptr ? d_residual[r * d + c] : 0.0) + rrms[r] * (dy[r * d + c] * gamma[c] - xhat * gx_mean);
    }
  }
}

}  // namespace wflops::kernels
