// db[c] = sum over rows of d[r, c], fp32 accumulation, deterministic. Two passes:
//  1. the rows are cut into chunks; block (x, y) sums a strip of columns over chunk y and writes
//     fp32 partial sums to scratch[y][c] (within a block, 8 row lanes are added in lane order);
//  2. one thread per column adds the chunks' partials in chunk order and writes db.
// No atomics: the order of every addition depends only on (rows, cols, dtype, alignment), so two
// runs give the same bits. Splitting the rows gives enough blocks to fill the GPU even for a
// narrow matrix (one block per column strip alone would leave most SMs idle at cols = 1600).
//
// Scratch: one device buffer per device, allocated on first use (at least 4 MiB, which covers
// every problem up to ~750k columns) and grown when a larger one is needed (cudaFree waits for
// the device). It is shared by all streams: bias_grad must not run on two streams at once.
#include <algorithm>
#include <map>
#include <mutex>

#include "common/dtype_dispatch.cuh"
#include "common/elementwise_vector.cuh"
#include "elementwise/bias_grad.cuh"

namespace wflops::kernels {

namespace {

constexpr int kLanesX = 32;  // column groups per block: one warp reads 32 x 16 contiguous bytes
constexpr int kLanesY = 8;   // rows a block reads at once
constexpr long kTargetBlocks = 1024;
constexpr long kMinChunkRows = 32;  // at least 4 rows per row lane
constexpr std::size_t kMinScratchBytes = 4u << 20;

// Pass 1. Each thread sums W adjacent columns (W = 16 bytes of T, or 1 on the scalar path) over
// rows threadIdx.y, +8, ... of the block's chunk.
template <typename T, int W>
__global__ void partial_sums_kernel(const T* d, float* partial, long rows, long cols, long chunk_rows) {
  // Layout [lane y][element j][lane x]: the writes below are free of bank conflicts.
  __shared__ float sums[kLanesY][W * kLanesX];
  const long strip = static_cast<long>(blockIdx.x) * kLanesX * W;
  const long c = strip + static_cast<long>(threadIdx.x) * W;
  const long r_begin = static_cast<long>(blockIdx.y) * chunk_rows;
  const long r_end = min(rows, r_begin + chunk_rows);
  float acc[W];
#pragma unroll
  for (int j = 0; j < W; ++j) acc[j] = 0.0f;
  if (c < cols) {  // on the vector path cols is a multiple of W, so c < cols covers all W
    for (long r = r_begin + threadIdx.y; r < r_end; r += kLanesY) {
      if constexpr (W == 1) {
        acc[0] += vec::to_float(d[r * cols + c]);
      } else {
        float x[W];
        vec::load<W>(d + r * cols + c, x);
#pragma unroll
        for (int j = 0; j < W; ++j) acc[j] += x[j];
      }
    }
  }
#pragma unroll
  for (int j = 0; j < W; ++j) sums[threadIdx.y][j * kLanesX + threadIdx.x] = acc[j];
  __syncthreads();
  for (int k = threadIdx.y * kLanesX + threadIdx.x; k < W * kLanesX; k += kLanesX * kLanesY) {
    const long col = strip + static_cast<long>(k % kLanesX) * W + k / kLanesX;
    if (col >= cols) continue;
    float s = 0.0f;
#pragma unroll
    for (int y = 0; y < kLanesY; ++y) s += sums[y][k];
    partial[static_cast<long>(blockIdx.y) * cols + col] = s;
  }
}

// Pass 2: chunk partials added in chunk order.
template <typename Out>
__global__ void sum_chunks_kernel(const float* partial, Out* db, long chunks, long cols) {
  for (long c = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; c < cols;
       c += static_cast<long>(gridDim.x) * blockDim.x) {
    float s = 0.0f;
    for (long k = 0; k < chunks; ++k) s += partial[k * cols + c];
    db[c] = vec::from_float<Out>(s);
  }
}

struct Scratch {
  float* data = nullptr;
  std::size_t bytes = 0;
};

// The partials buffer of the current device, at least `bytes` long (see the top of the file).
cudaError_t scratch_for(std::size_t bytes, float** out) {
  static std::mutex mutex;
  static std::map<int, Scratch> per_device;  // never freed: lives until the process ends
  int device = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e != cudaSuccess) return e;
  const std::lock_guard<std::mutex> lock(mutex);
  Scratch& s = per_device[device];
  if (s.bytes < bytes) {
    if (s.data) {
      e = cudaFree(s.data);
      s = Scratch{};
      if (e != cudaSuccess) return e;
    }
    const std::size_t want = std::max(bytes, kMinScratchBytes);
    e = cudaMalloc(&s.data, want);
    if (e != cudaSuccess) {
      s = Scratch{};
      return e;
    }
    s.bytes = want;
  }
  *out = s.data;
  return cudaSuccess;
}

template <typename Out>
cudaError_t launch_sum(const float* partial, void* db, long chunks, long cols, cudaStream_t stream) {
  sum_chunks_kernel<Out><<<vec::blocks_for(static_cast<std::size_t>(cols)), vec::kThreads, 0, stream>>>(
      partial, static_cast<Out*>(db), chunks, cols);
  return cudaGetLastError();
}

template <typename T, int W>
cudaError_t launch_with(const T* d, DType out_dtype, void* db, long rows, long cols, cudaStream_t stream) {
  const long grid_x = (cols + kLanesX * W - 1) / (kLanesX * W);
  const long wanted_chunks = (kTargetBlocks + grid_x - 1) / grid_x;
  const long max_chunks = (rows + kMinChunkRows - 1) / kMinChunkRows;
  const long planned = std::min(wanted_chunks, max_chunks);
  const long chunk_rows = (rows + planned - 1) / planned;
  const long chunks = (rows + chunk_rows - 1) / chunk_rows;  // <= 1024: within grid y's limit
  if (grid_x > 0x7FFFFFFFL) return cudaErrorInvalidValue;
  float* partial = nullptr;
  cudaError_t e =
      scratch_for(static_cast<std::size_t>(chunks) * static_cast<std::size_t>(cols) * sizeof(float), &partial);
  if (e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>(grid_x), static_cast<unsigned>(chunks));
  partial_sums_kernel<T, W><<<grid, dim3(kLanesX, kLanesY), 0, stream>>>(d, partial, rows, cols, chunk_rows);
  e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  return dispatch_float_types(
      out_dtype, [&](auto tag) { return launch_sum<typename decltype(tag)::type>(partial, db, chunks, cols, stream); });
}

template <typename T>
cudaError_t launch(const void* d, DType db_dtype, void* db, long rows, long cols, cudaStream_t stream) {
  constexpr int W = vec::kWidth<T>;
  const auto* data = static_cast<const T*>(d);
  if (cols % W == 0 && vec::aligned16(d)) return launch_with<T, W>(data, db_dtype, db, rows, cols, stream);
  return launch_with<T, 1>(data, db_dtype, db, rows, cols, stream);
}

}  // namespace

cudaError_t bias_grad(DType dtype, const void* d, DType db_dtype, void* db, long rows, long cols, cudaStream_t stream) {
  if (rows < 0 || cols < 0) return cudaErrorInvalidValue;
  if (db_dtype != DType::fp32 && db_dtype != dtype) return cudaErrorInvalidValue;
  if (cols == 0) return cudaSuccess;
  if (db == nullptr) return cudaErrorInvalidValue;
  // A sum over no rows is 0 (all-zero bits in every float format).
  const std::size_t db_bytes = static_cast<std::size_t>(cols) * dtype_bytes(db_dtype);
  if (rows == 0) return cudaMemsetAsync(db, 0, db_bytes, stream);
  if (d == nullptr) return cudaErrorInvalidValue;
  return dispatch_float_types(
      dtype, [&](auto tag) { return launch<typename decltype(tag)::type>(d, db_dtype, db, rows, cols, stream); });
}

}  // namespace wflops::kernels
