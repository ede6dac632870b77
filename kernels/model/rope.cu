// RoPE on head-major heads (rope.cuh): one thread per (row, i < hd/2) pair.
#include <cmath>

#include "common/dtype_dispatch.cuh"
#include "common/elementwise_vector.cuh"
#include "model/rope.cuh"

namespace wflops::kernels {

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads)
    rope_kernel(const T* x, T* y, std::size_t pairs, std::size_t half, std::size_t seq, float log2_theta, float sign) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; k < pairs; k += stride) {
    const std::size_t row = k / half, i = k - row * half;
    const float position = static_cast<float>(row % seq);
    // theta^(-2i/hd) = 2^(-(i/half) log2 theta)
    const float inv_freq = exp2f(-static_cast<float>(i) / static_cast<float>(half) * log2_theta);
    float sn, cs;
    sincosf(position * inv_freq, &sn, &cs);
    sn *= sign;
    const std::size_t at = row * 2 * half + i;
    const float a = vec::to_float(x[at]), b = vec::to_float(x[at + half]);
    y[at] = vec::from_float<T>(a * cs - b * sn);
    y[at + half] = vec::from_float<T>(b * cs + a * sn);
  }
}

}  // namespace

cudaError_t rope(DType dtype, const void* x, void* y, const RopeDims& dims, double theta, bool inverse,
                 cudaStream_t stream) {
  if (dims.head_dim % 2 != 0 || dims.seq == 0 || !(theta > 1)) return cudaErrorInvalidValue;
  const std::size_t half = dims.head_dim / 2, pairs = dims.rows() * half;
  if (pairs == 0) return cudaSuccess;
  if (x == nullptr || y == nullptr) return cudaErrorInvalidValue;
  const std::size_t wanted = (pairs + kThreads - 1) / kThreads;
  const int blocks = static_cast<int>(wanted < 65536 ? wanted : 65536);
  const float log2_theta = static_cast<float>(std::log2(theta));
  return dispatch_float_types(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    rope_kernel<T><<<blocks, kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), pairs, half, dims.seq,
                                                    log2_theta, inverse ? -1.0f : 1.0f);
    return cudaGetLastError();
  });
}

void rope_host(const double* x, double* y, const RopeDims& dims, double theta, bool inverse) {
  const std::size_t hd = dims.head_dim, half = hd / 2;
  for (std::size_t row = 0; row < dims.rows(); ++row) {
    const double position = static_cast<double>(row % dims.seq);
    for (std::size_t i = 0; i < half; ++i) {
      const double angle = position * std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
      const double cs = std::cos(angle), sn = inverse ? -std::sin(angle) : std::sin(angle);
      const double a = x[row * hd + i], b = x[row * hd + i + half];
      y[row * hd + i] = a * cs - b * sn;
      y[row * hd + i + half] = b * cs + a * sn;
    }
  }
}

}  // namespace wflops::kernels
