// out[i] = a[i] + b[i] (a residual connection as its own pass): fp32 arithmetic, 16-byte vector
// accesses where every pointer is aligned, a scalar tail for the rest.
#include "dtype_dispatch.cuh"
#include "elementwise_vector.cuh"
#include "residual_add.cuh"

namespace wflops::kernels {

namespace {

// Each element is read and written by the same thread, so out may alias a or b.
template <typename T>
__global__ void residual_add_kernel(const T* a, const T* b, T* out, std::size_t n, bool vectorised) {
  constexpr int W = vec::kWidth<T>;
  const std::size_t tid = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t vectors = vectorised ? n / W : 0;
  for (std::size_t v = tid; v < vectors; v += stride) {
    float x[W], y[W];
    vec::load<W>(a + v * W, x);
    vec::load<W>(b + v * W, y);
#pragma unroll
    for (int j = 0; j < W; ++j) x[j] += y[j];
    vec::store<W>(out + v * W, x);
  }
  for (std::size_t i = vectors * W + tid; i < n; i += stride) {
    out[i] = vec::from_float<T>(vec::to_float(a[i]) + vec::to_float(b[i]));
  }
}

template <typename T>
cudaError_t launch(const void* a, const void* b, void* out, std::size_t n, cudaStream_t stream) {
  const bool vectorised = vec::aligned16(a) && vec::aligned16(b) && vec::aligned16(out);
  const std::size_t items = vectorised ? n / vec::kWidth<T> + 1 : n;
  residual_add_kernel<T><<<vec::blocks_for(items), vec::kThreads, 0, stream>>>(
      static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(out), n, vectorised);
  return cudaGetLastError();
}

}  // namespace

cudaError_t residual_add(DType dtype, const void* a, const void* b, void* out, std::size_t n,
                         cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (a == nullptr || b == nullptr || out == nullptr) return cudaErrorInvalidValue;
  return dispatch_float_types(dtype, [&](auto tag) {
    return launch<typename decltype(tag)::type>(a, b, out, n, stream);
  });
}

}  // namespace wflops::kernels
