#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include "moe/moe_common.cuh"
#include "moe/moe_permute.cuh"

namespace wflops::kernels {

namespace {

using moe_detail::blocks_for;
using moe_detail::kThreads;

// Integer atomics: the counts do not depend on the order the additions happen in.
__global__ void histogram_kernel(const int* ids, int n, int bins, int* counts) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const int b = ids[i];
    if (b >= 0 && b < bins) atomicAdd(&counts[b], 1);
  }
}

__global__ void iota_kernel(int* values, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) values[i] = i;
}

__global__ void rows_kernel(const int* sorted_assignment, const float* assign_score, int rows, int k, int* row_token,
                            float* row_score) {
  for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += gridDim.x * blockDim.x) {
    const int a = sorted_assignment[r];
    row_token[r] = a / k;
    row_score[r] = assign_score[a];
  }
}

}  // namespace

cudaError_t moe_histogram(const int* ids, int n, int bins, int* counts, cudaStream_t stream) {
  if (n < 0 || bins <= 0) return cudaErrorInvalidValue;
  cudaError_t e = cudaMemsetAsync(counts, 0, static_cast<std::size_t>(bins) * sizeof(int), stream);
  if (e != cudaSuccess || n == 0) return e;
  histogram_kernel<<<blocks_for(n), kThreads, 0, stream>>>(ids, n, bins, counts);
  return cudaGetLastError();
}

cudaError_t moe_offsets(void* temp, std::size_t* temp_bytes, const int* counts, int* offsets, int n,
                        cudaStream_t stream) {
  if (n <= 0) return cudaErrorInvalidValue;
  if (temp == nullptr) return cub::DeviceScan::InclusiveSum(nullptr, *temp_bytes, counts, offsets + 1, n, stream);
  cudaError_t e = cudaMemsetAsync(offsets, 0, sizeof(int), stream);
  if (e != cudaSuccess) return e;
  return cub::DeviceScan::InclusiveSum(temp, *temp_bytes, counts, offsets + 1, n, stream);
}

cudaError_t moe_sort_pairs(void* temp, std::size_t* temp_bytes, const int* keys_in, int* keys_out, const int* values_in,
                           int* values_out, int n, int key_bits, cudaStream_t stream) {
  if (n <= 0 || key_bits <= 0 || key_bits > 31) return cudaErrorInvalidValue;
  return cub::DeviceRadixSort::SortPairs(temp, *temp_bytes, keys_in, keys_out, values_in, values_out, n, 0, key_bits,
                                         stream);
}

cudaError_t moe_iota(int* values, int n, cudaStream_t stream) {
  if (n <= 0) return cudaErrorInvalidValue;
  iota_kernel<<<blocks_for(n), kThreads, 0, stream>>>(values, n);
  return cudaGetLastError();
}

cudaError_t moe_rows_from_assignments(const int* sorted_assignment, const float* assign_score, int rows, int k,
                                      int* row_token, float* row_score, cudaStream_t stream) {
  if (rows <= 0 || k <= 0) return cudaErrorInvalidValue;
  rows_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(sorted_assignment, assign_score, rows, k, row_token,
                                                         row_score);
  return cudaGetLastError();
}

int moe_key_bits(int count) {
  int bits = 1;
  while (bits < 31 && (1 << bits) < count) ++bits;
  return bits;
}

}  // namespace wflops::kernels
