// Device-side pieces shared by the row kernels of the model step (layernorm_residual.cu,
// rmsnorm_residual.cu, cross_entropy.cu, embedding.cu): loads and stores of W consecutive elements
// that are 16-byte vectors when W is the vector width and single elements when W = 1, block-wide
// sums that every thread receives bit-identically (a fixed order of additions, so results never
// depend on scheduling), and the passes the two norms share: the residual row staged in shared
// memory, the backward's per-element passes and the second stage of its parameter gradients.
// Included only by .cu files.
#pragma once
#include <cuda_runtime.h>

#include "common/elementwise_vector.cuh"

namespace wflops::kernels::rows {

// W elements at p as floats: one 16-byte load when W is T's vector width (p 16-byte aligned),
// else element by element.
template <int W, typename T>
__device__ __forceinline__ void load(const T* p, float (&x)[W]) {
  if constexpr (W * sizeof(T) % 16 == 0) {
    vec::load<W>(p, x);
  } else {
#pragma unroll
    for (int j = 0; j < W; ++j) x[j] = vec::to_float(p[j]);
  }
}

template <int W, typename T>
__device__ __forceinline__ void store(T* p, const float (&x)[W]) {
  if constexpr (W * sizeof(T) % 16 == 0) {
    vec::store<W>(p, x);
  } else {
#pragma unroll
    for (int j = 0; j < W; ++j) p[j] = vec::from_float<T>(x[j]);
  }
}

// x rounded to T and back: what a value stored in T and read again is.
template <typename T>
__device__ __forceinline__ float round_to(float x) {
  return vec::to_float(vec::from_float<T>(x));
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// x = a (+ b) at offset i of a row: with b, the sum rounded to T as s stores it, and stored to s
// (the residual stream that the norms normalise is what s holds, not the fp32 sum).
template <int W, typename T>
__device__ __forceinline__ void load_residual_sum(const T* a, const T* b, T* s, std::size_t i, float (&x)[W]) {
  load<W>(a + i, x);
  if (b != nullptr) {
    float xb[W];
    load<W>(b + i, xb);
#pragma unroll
    for (int j = 0; j < W; ++j) x[j] = round_to<T>(x[j] + xb[j]);
    store<W>(s + i, x);
  }
}

// A row of d = W * vectors elements in shared memory as W planes: element j of vector v at
// j * vectors + v, so a warp touching element j of consecutive vectors touches consecutive words (no
// bank conflicts), and each thread only ever reads back what it wrote.
__device__ __forceinline__ int plane(int j, int vectors, int v) { return j * vectors + v; }

// Stages the block's row of the residual stream (load_residual_sum at `base`) in `row` as planes and
// returns this thread's sum of f(x) over the elements it staged.
template <int W, typename T, typename F>
__device__ __forceinline__ float stage_residual_row(const T* a, const T* b, T* s, std::size_t base, int vectors,
                                                    float* row, F f) {
  float acc = 0.0f;
  for (int v = threadIdx.x; v < vectors; v += blockDim.x) {
    float x[W];
    load_residual_sum<W>(a, b, s, base + v * W, x);
#pragma unroll
    for (int j = 0; j < W; ++j) {
      row[plane(j, vectors, v)] = x[j];
      acc += f(x[j]);
    }
  }
  return acc;
}

// The first pass of a norm's backward over one row at `base`: f(k, dy, x, gamma) for every element
// of the thread's pieces, x the stored residual stream s and k the element's plane index.
template <int W, typename T, typename F>
__device__ __forceinline__ void for_each_element(const T* dy, const T* s, const T* gamma, std::size_t base, int vectors,
                                                 F f) {
  for (int v = threadIdx.x; v < vectors; v += blockDim.x) {
    float dyv[W], x[W], g[W];
    load<W>(dy + base + v * W, dyv);
    load<W>(s + base + v * W, x);
    load<W>(gamma + v * W, g);
#pragma unroll
    for (int j = 0; j < W; ++j) f(plane(j, vectors, v), dyv[j], x[j], g[j]);
  }
}

// The input-gradient pass of a norm's backward over one row at `base` (vectors W-wide pieces):
// ds = dres + dx, with dx[j] = dx_of(dy[j], s[j], gamma[j]) and no dres read when it is null.
// Each thread writes only the pieces it read, so ds may alias dy once the row's sums are done.
template <int W, typename T, typename F>
__device__ __forceinline__ void write_input_grad(const T* dy, const T* s, const T* gamma, const T* dres, T* ds,
                                                 std::size_t base, int vectors, F dx_of) {
  for (int v = threadIdx.x; v < vectors; v += blockDim.x) {
    float dyv[W], x[W], g[W], out[W];
    load<W>(dy + base + v * W, dyv);
    load<W>(s + base + v * W, x);
    load<W>(gamma + v * W, g);
    if (dres != nullptr) {
      load<W>(dres + base + v * W, out);
    } else {
#pragma unroll
      for (int j = 0; j < W; ++j) out[j] = 0.0f;
    }
#pragma unroll
    for (int j = 0; j < W; ++j) out[j] += dx_of(dyv[j], x[j], g[j]);
    store<W>(ds + base + v * W, out);
  }
}

// Largest block the row kernels launch, and so the size of their reduction scratch.
constexpr int kMaxThreads = 1024;
constexpr int kMaxWarps = kMaxThreads / 32;

// Sums of a and b over the block (blockDim.x a multiple of 32, at most kMaxThreads); every thread
// returns the same two values, added in warp order. `scratch` holds 2 * kMaxWarps floats; the
// first barrier lets a previous call's readers finish with it.
__device__ __forceinline__ void block_sum2(float& a, float& b, float* scratch) {
  a = warp_sum(a);
  b = warp_sum(b);
  const int warp = threadIdx.x / 32, warps = blockDim.x / 32;
  __syncthreads();
  if (threadIdx.x % 32 == 0) {
    scratch[warp] = a;
    scratch[kMaxWarps + warp] = b;
  }
  __syncthreads();
  a = 0.0f;
  b = 0.0f;
  for (int w = 0; w < warps; ++w) {
    a += scratch[w];
    b += scratch[kMaxWarps + w];
  }
}

__device__ __forceinline__ float block_sum(float a, float* scratch) {
  float unused = 0.0f;
  block_sum2(a, unused, scratch);
  return a;
}

// Threads for a block that owns one row of `vectors` W-wide pieces: enough warps to give every
// thread one piece, at most `cap` (a multiple of 32).
inline int row_threads(std::size_t vectors, int cap) {
  const std::size_t warps = (vectors + 31) / 32;
  const std::size_t threads = warps * 32;
  if (threads < 32) return 32;
  return threads > static_cast<std::size_t>(cap) ? cap : static_cast<int>(threads);
}

// Stage two of a norm's parameter gradients. Stage one leaves one row of kPlanes * d column sums
// per block (`count` rows; plane 0 is dgamma's, plane 1 dbeta's); column c is summed over the rows
// in a fixed order: thread (x, y) of a kReduceColumns x kReduceSplit block adds rows y, y + 16, ...
// of column x, then thread y = 0 adds the 16 results in order and writes (or adds) the total to
// out0 (plane 0) or out1 (plane 1).
constexpr int kReduceColumns = 32, kReduceSplit = 16;

template <int kPlanes>
__global__ void __launch_bounds__(kReduceColumns* kReduceSplit)
    reduce_partials_kernel(const float* partial, int count, int d, float* out0, float* out1, bool accumulate) {
  __shared__ float part[kReduceSplit][kReduceColumns];
  const int column = blockIdx.x * kReduceColumns + threadIdx.x;
  float t = 0.0f;
  if (column < kPlanes * d) {
    for (int p = threadIdx.y; p < count; p += kReduceSplit)
      t += partial[p * kPlanes * static_cast<std::size_t>(d) + column];
  }
  part[threadIdx.y][threadIdx.x] = t;
  __syncthreads();
  if (threadIdx.y != 0 || column >= kPlanes * d) return;
  float total = 0.0f;
  for (int k = 0; k < kReduceSplit; ++k) total += part[k][threadIdx.x];
  float* out = kPlanes == 1 || column < d ? out0 + column : out1 + (column - d);
  *out = accumulate ? *out + total : total;
}

template <int kPlanes>
cudaError_t reduce_partials(const float* partial, std::size_t count, std::size_t d, float* out0, float* out1,
                            bool accumulate, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((kPlanes * d + kReduceColumns - 1) / kReduceColumns);
  reduce_partials_kernel<kPlanes><<<blocks, dim3(kReduceColumns, kReduceSplit), 0, stream>>>(
      partial, static_cast<int>(count), static_cast<int>(d), out0, out1, accumulate);
  return cudaGetLastError();
}

}  // namespace wflops::kernels::rows
