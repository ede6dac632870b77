// out[r, c] = in[r, c] + bias[c] over a row-major [rows, cols] matrix: fp32 arithmetic, 16-byte
// vector accesses when the pointers are aligned and a row holds whole vectors (cols a multiple of
// the vector width, so no vector straddles two rows); otherwise element by element.
#include <algorithm>

#include "bias_add.cuh"
#include "dtype_dispatch.cuh"
#include "elementwise_vector.cuh"

namespace wflops::kernels {

namespace {

constexpr int kThreads = 128;
constexpr std::size_t kTargetBlocks = 8192;  // ~1M threads: enough to fill any GPU's SMs
constexpr std::size_t kMaxGridY = 65535;

// Each thread owns one group of W columns (grid x) and walks rows (grid y, stride gridDim.y): its
// bias values are loaded once, and no index division is needed. in may equal out (each element
// is read, then written, by the same thread).
template <typename T, int W>
__global__ void bias_add_kernel(const T* in, const T* bias, T* out, std::size_t rows, std::size_t cols) {
  const std::size_t c = (blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x) * W;
  if (c >= cols) return;
  if constexpr (W == 1) {
    const float b = vec::to_float(bias[c]);
    for (std::size_t r = blockIdx.y; r < rows; r += gridDim.y) {
      out[r * cols + c] = vec::from_float<T>(vec::to_float(in[r * cols + c]) + b);
    }
  } else {
    float b[W];
    vec::load<W>(bias + c, b);
    for (std::size_t r = blockIdx.y; r < rows; r += gridDim.y) {
      float x[W];
      vec::load<W>(in + r * cols + c, x);
#pragma unroll
      for (int j = 0; j < W; ++j) x[j] += b[j];
      vec::store<W>(out + r * cols + c, x);
    }
  }
}

template <typename T, int W>
cudaError_t launch_with(const T* in, const T* bias, T* out, std::size_t rows, std::size_t cols,
                        cudaStream_t stream) {
  const std::size_t groups = (cols + W - 1) / W;
  const std::size_t grid_x = (groups + kThreads - 1) / kThreads;
  const std::size_t grid_y = std::min({rows, kMaxGridY, std::max<std::size_t>(1, kTargetBlocks / grid_x)});
  if (grid_x > 0x7FFFFFFFu) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(grid_x), static_cast<unsigned>(grid_y));
  bias_add_kernel<T, W><<<grid, kThreads, 0, stream>>>(in, bias, out, rows, cols);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch(const void* in_v, const void* bias_v, void* out_v, std::size_t rows, std::size_t cols,
                   cudaStream_t stream) {
  constexpr int W = vec::kWidth<T>;
  const auto* in = static_cast<const T*>(in_v);
  const auto* bias = static_cast<const T*>(bias_v);
  auto* out = static_cast<T*>(out_v);
  const bool vectorised = cols % W == 0 && vec::aligned16(in) && vec::aligned16(bias) && vec::aligned16(out);
  if (vectorised) return launch_with<T, W>(in, bias, out, rows, cols, stream);
  return launch_with<T, 1>(in, bias, out, rows, cols, stream);
}

}  // namespace

cudaError_t bias_add(DType dtype, const void* in, const void* bias, void* out, long rows, long cols,
                     cudaStream_t stream) {
  if (rows < 0 || cols < 0) return cudaErrorInvalidValue;
  if (rows == 0 || cols == 0) return cudaSuccess;
  if (in == nullptr || bias == nullptr || out == nullptr) return cudaErrorInvalidValue;
  const auto r = static_cast<std::size_t>(rows), c = static_cast<std::size_t>(cols);
  return dispatch_float_types(dtype, [&](auto tag) {
    return launch<typename decltype(tag)::type>(in, bias, out, r, c, stream);
  });
}

}  // namespace wflops::kernels
