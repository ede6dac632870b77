#include "moe_fill.cuh"

namespace wflops::kernels {

namespace {

__global__ void set_column_kernel(__nv_bfloat16* a, int rows, int cols, int col, float value) {
  for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += gridDim.x * blockDim.x) {
    a[static_cast<std::size_t>(r) * cols + col] = __float2bfloat16(value);
  }
}

}  // namespace

cudaError_t moe_set_column(__nv_bfloat16* a, int rows, int cols, int col, float value, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0 || col < 0 || col >= cols) return cudaErrorInvalidValue;
  const int blocks = (rows + 255) / 256 < 4096 ? (rows + 255) / 256 : 4096;
  set_column_kernel<<<blocks, 256, 0, stream>>>(a, rows, cols, col, value);
  return cudaGetLastError();
}

}  // namespace wflops::kernels
