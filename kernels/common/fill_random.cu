#include "common/dtype_dispatch.cuh"
#include "common/elementwise_vector.cuh"
#include "common/fill_random.cuh"

namespace wflops::kernels {

namespace {

__device__ __forceinline__ float uniform_pm1(std::uint64_t seed, std::size_t i) {
  // splitmix64 of (seed, i): statistically good, stateless, one value per thread.
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (static_cast<std::uint64_t>(i) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;  // 24 random bits -> [-1, 1)
}

template <typename T>
__global__ void fill_kernel(T* data, std::size_t count, std::uint64_t seed, bool tf32_exact) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    float x = uniform_pm1(seed, i);
    if (tf32_exact) x = __uint_as_float(__float_as_uint(x) & 0xFFFFE000u);
    data[i] = vec::from_float<T>(x);
  }
}

template <typename T>
cudaError_t launch(T* data, std::size_t count, std::uint64_t seed, bool tf32_exact, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  fill_kernel<T><<<vec::blocks_for(count), vec::kThreads, 0, stream>>>(data, count, seed, tf32_exact);
  return cudaGetLastError();
}

}  // namespace

cudaError_t fill_random(DType dtype, void* data, std::size_t count, std::uint64_t seed, cudaStream_t stream) {
  if (dtype == DType::fp8_e4m3) return launch(static_cast<__nv_fp8_e4m3*>(data), count, seed, false, stream);
  const bool tf32 = dtype == DType::tf32;  // stored as fp32, the low mantissa bits cleared
  return dispatch_float_types(storage_dtype(dtype), [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch(static_cast<T*>(data), count, seed, tf32, stream);
  });
}

}  // namespace wflops::kernels
