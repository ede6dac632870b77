#include "moe/moe_fill.cuh"

namespace wflops::kernels {

namespace {

__global__ void set_column_kernel(__nv_bfloat16* a, int rows, int cols, int col, float value) {
  for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += gridDim.x * blockDim.x) {
    a[static_cast<std::size_t>(r) * cols + col] = __float2bfloat16(value);
  }
}

__global__ void scale_kernel(__nv_bfloat16* a, std::size_t count, float scale) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    a[i] = __float2bfloat16(__bfloat162float(a[i]) * scale);
  }
}

}  // namespace

cudaError_t moe_scale(__nv_bfloat16* a, std::size_t count, float scale, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  const std::size_t blocks = (count + 255) / 256 < 4096 ? (count + 255) / 256 : 4096;
  scale_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(a, count, scale);
  return cudaGetLastError();
}

cudaError_t moe_set_column(__nv_bfloat16* a, int rows, int cols, int col, float value, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0 || col < 0 || col >= cols) return cudaErrorInvalidValue;
  const int blocks = (rows + 255) / 256 < 4096 ? (rows + 255) / 256 : 4096;
  set_column_kernel<<<blocks, 256, 0, stream>>>(a, rows, cols, col, value);
  return cudaGetLastError();
}

}  // namespace wflops::kernels
