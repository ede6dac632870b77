#include "common/count_nonfinite.cuh"
#include "common/dtype_dispatch.cuh"
#include "common/elementwise_vector.cuh"

namespace wflops::kernels {

namespace {

template <typename T>
__global__ void count_kernel(const T* data, std::size_t count, unsigned long long* out) {
  unsigned long long mine = 0;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    mine += isfinite(vec::to_float(data[i])) ? 0 : 1;
  }
  // One atomic per warp keeps contention low when everything is NaN.
  for (int offset = 16; offset > 0; offset /= 2) mine += __shfl_down_sync(0xffffffffu, mine, offset);
  if ((threadIdx.x & 31) == 0 && mine) atomicAdd(out, mine);
}

template <typename T>
cudaError_t launch(const T* data, std::size_t count, unsigned long long* out, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  const int threads = 256;
  const std::size_t wanted = (count + threads - 1) / threads;
  const int blocks = static_cast<int>(wanted < 8192 ? wanted : 8192);
  count_kernel<T><<<blocks, threads, 0, stream>>>(data, count, out);
  return cudaGetLastError();
}

}  // namespace

cudaError_t count_nonfinite(DType dtype, const void* data, std::size_t count, unsigned long long* device_count,
                            cudaStream_t stream) {
  return dispatch_float_types(storage_dtype(dtype), [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch(static_cast<const T*>(data), count, device_count, stream);
  });
}

}  // namespace wflops::kernels
