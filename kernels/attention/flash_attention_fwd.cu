#include <fmt/core.h>

#include <cmath>

#include "attention/flash_attention_common.cuh"
#include "attention/flash_attention_fwd.cuh"

namespace wflops::kernels {

namespace {

using namespace flash;

constexpr int kBlockQ = static_cast<int>(kFlashForwardBlockQ);  // 4 warps x 16 query rows
constexpr int kBlockK = static_cast<int>(kFlashForwardBlockK);
constexpr int kThreads = 128;

// Each shared row is padded by 16 bytes: consecutive rows then start in different bank groups and
// ldmatrix's eight row addresses do not conflict.
template <int kDim>
constexpr int stride() {
  return kDim + static_cast<int>(kFlashRowPad);
}
template <int kDim>
constexpr std::size_t shared_bytes() {
  return static_cast<std::size_t>(flash_forward_shared_bytes(kDim));  // 2 x K (Q in the second), 2 x V
}
// Q is staged in K's second buffer and O in K's first: both are one tile of kBlockQ rows.
static_assert(kBlockQ <= kBlockK, "the Q and O tiles must fit in a K buffer");
static_assert(flash_forward_shared_bytes(64) == 4 * kBlockK * stride<64>() * 2 &&
                  flash_forward_shared_bytes(128) == 4 * kBlockK * stride<128>() * 2,
              "the footprint in the header must match the layout the kernel uses");
// Two blocks per SM on an A100 at d = 128: compute capability 8.0 has at most 164 KB of shared memory
// per SM (CUDA C++ Programming Guide, technical specifications per compute capability), and the driver
// reserves 1 KB per block on top of the block's own (reservedSharedMemPerBlock; the toolkit's
// cuda_occupancy.h adds it per block and rounds to 128 bytes, a multiple here).
static_assert(2 * (flash_forward_shared_bytes(128) + 1024) <= 164 * 1024, "two blocks per A100 SM at d = 128");

template <typename T, int kDim>
__global__ void __launch_bounds__(kThreads)
    flash_forward_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ o,
                         float* __restrict__ lse, long seq, bool causal, float scale_log2) {
  constexpr int kStride = stride<kDim>();
  constexpr int kSteps = kDim / 16;     // k-steps of Q K^T
  constexpr int kOTiles = kDim / 8;     // n-tiles of O
  constexpr int kSTiles = kBlockK / 8;  // n-tiles of S
  extern __shared__ __align__(16) unsigned char shared_raw[];
  T* sk = reinterpret_cast<T*>(shared_raw);  // two buffers
  T* sv = sk + 2 * kBlockK * kStride;        // two buffers
  T* sq = sk + kBlockK * kStride;            // K's second buffer, until Q sits in registers

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  const long q0 = static_cast<long>(blockIdx.x) * kBlockQ;
  const long slice = static_cast<long>(blockIdx.y) * seq * kDim;
  const T* qs = q + slice;
  const T* ks = k + slice;
  const T* vs = v + slice;

  // Key tiles this query tile needs: with a causal mask, those starting at or before its last row.
  const long last_row = (q0 + kBlockQ < seq ? q0 + kBlockQ : seq) - 1;
  const long key_end = causal ? last_row + 1 : seq;
  const int key_tiles = static_cast<int>((key_end + kBlockK - 1) / kBlockK);

  load_tile_async<T, kBlockQ, kDim, kStride, kThreads>(sq, qs, q0, seq, tid);
  cp_async_commit();
  load_tile_async<T, kBlockK, kDim, kStride, kThreads>(sk, ks, 0, seq, tid);
  load_tile_async<T, kBlockK, kDim, kStride, kThreads>(sv, vs, 0, seq, tid);
  cp_async_commit();
  cp_async_wait<1>();  // Q has landed
  __syncthreads();

  std::uint32_t qf[kSteps][4];  // this warp's 16 query rows as A fragments
#pragma unroll
  for (int kk = 0; kk < kSteps; ++kk) {
    ldmatrix_x4(qf[kk], sq + (warp * 16 + (lane & 15)) * kStride + kk * 16 + (lane >> 4) * 8);
  }
  // Every warp has read Q before the first prefetch (key tile 1, into K's second buffer) overwrites it.
  __syncthreads();

  float acc[kOTiles][4];
#pragma unroll
  for (int i = 0; i < kOTiles; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY};  // rows g and g+8 of the warp, in raw score units
  float row_sum[2] = {0.0f, 0.0f};            // this thread's part of the rows' sums
  const long my_row[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};

  for (int j = 0; j < key_tiles; ++j) {
    const int buf = j & 1;
    if (j + 1 < key_tiles) {  // prefetch the next K/V tile into the other buffer
      const long next0 = static_cast<long>(j + 1) * kBlockK;
      load_tile_async<T, kBlockK, kDim, kStride, kThreads>(sk + (buf ^ 1) * kBlockK * kStride, ks, next0, seq, tid);
      load_tile_async<T, kBlockK, kDim, kStride, kThreads>(sv + (buf ^ 1) * kBlockK * kStride, vs, next0, seq, tid);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const T* kt = sk + buf * kBlockK * kStride;
    const T* vt = sv + buf * kBlockK * kStride;
    const long k0 = static_cast<long>(j) * kBlockK;

    // S = Q K^T for 16 rows x 64 keys.
    float s[kSTiles][4];
#pragma unroll
    for (int i = 0; i < kSTiles; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kSteps; ++kk) mma_abt_step<T, kSTiles, kStride>(s, qf[kk], kt, kk, lane);
    // Mask keys past the sequence and, when causal, keys after the query.
    const bool needs_mask = k0 + kBlockK > seq || (causal && k0 + kBlockK - 1 > q0);
    if (needs_mask) {
#pragma unroll
      for (int i = 0; i < kSTiles; ++i) {
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const long key = k0 + i * 8 + 2 * t + (c & 1);
          const long row = my_row[c >> 1];
          if (key >= seq || (causal && key > row)) s[i][c] = -INFINITY;
        }
      }
    }
    // Online softmax: new running max, rescale what was accumulated so far.
    float scale_prev[2], base[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float m = row_max[r];
#pragma unroll
      for (int i = 0; i < kSTiles; ++i) m = fmaxf(m, fmaxf(s[i][2 * r], s[i][2 * r + 1]));
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
      // While a row has seen no visible key its max is -inf; use 0 as the base so that
      // exp2(-inf - base) = 0 rather than NaN.
      base[r] = m == -INFINITY ? 0.0f : m * scale_log2;
      scale_prev[r] = exp2f(row_max[r] * scale_log2 - base[r]);
      row_max[r] = m;
      row_sum[r] *= scale_prev[r];
    }
#pragma unroll
    for (int i = 0; i < kOTiles; ++i) {
      acc[i][0] *= scale_prev[0];
      acc[i][1] *= scale_prev[0];
      acc[i][2] *= scale_prev[1];
      acc[i][3] *= scale_prev[1];
    }
#pragma unroll
    for (int i = 0; i < kSTiles; ++i) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        s[i][c] = exp2f(s[i][c] * scale_log2 - base[c >> 1]);
        row_sum[c >> 1] += s[i][c];
      }
    }
    mma_pv<T, kBlockK, kDim, kStride>(acc, s, vt, lane);  // O += P V
    __syncthreads();  // every warp is done with this buffer before the next prefetch overwrites it
  }

  // Finish: the rows' sums over the quad of threads that share them, O = acc / sum, L. O goes through
  // shared memory (this warp's 16 rows of K's first buffer, free since the loop's last barrier and no
  // copy is in flight) so that global memory sees whole 16-byte chunks of each row, not 4-byte pieces.
  T* so = sk + warp * 16 * kStride;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = row_sum[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    // Words at row g + 8r, column word 4i + t: with a row stride of (kDim + 8) / 2 words, 4 (mod 32)
    // for both head dims, the warp's 32 stores hit 32 different banks.
#pragma unroll
    for (int i = 0; i < kOTiles; ++i) {
      *reinterpret_cast<std::uint32_t*>(so + (g + 8 * r) * kStride + i * 8 + 2 * t) =
          pack2<T>(acc[i][2 * r] * inv, acc[i][2 * r + 1] * inv);
    }
    const long row = my_row[r];
    if (row < seq && t == 0) {
      const float log2_sum = row_max[r] * scale_log2 + log2f(sum);
      lse[static_cast<long>(blockIdx.y) * seq + row] = sum > 0.0f ? log2_sum * 0.69314718055994531f : INFINITY;
    }
  }
  __syncwarp();  // orders this warp's shared stores before its loads (Programming Guide, __syncwarp)
  constexpr int kChunksPerRow = kDim / 8;  // 16-byte chunks of a row
  T* os = o + slice;
#pragma unroll
  for (int i = 0; i < 16 * kChunksPerRow / 32; ++i) {
    const int chunk = lane + 32 * i;
    const int r = chunk / kChunksPerRow;
    const int col = (chunk % kChunksPerRow) * 8;
    const long row = q0 + warp * 16 + r;
    if (row < seq) {
      *reinterpret_cast<uint4*>(os + row * kDim + col) = *reinterpret_cast<const uint4*>(so + r * kStride + col);
    }
  }
}

template <typename T, int kDim>
cudaError_t launch_forward(const void* q, const void* k, const void* v, void* o, float* lse, const AttentionDims& dims,
                           cudaStream_t stream) {
  const float scale_log2 = static_cast<float>(1.0 / std::sqrt(static_cast<double>(kDim)) * 1.4426950408889634);
  // One block per query tile. The largest carveout costs nothing here: the kernel reads no global
  // memory through L1.
  return launch_tiles(flash_forward_kernel<T, kDim>, kBlockQ, kThreads, shared_bytes<kDim>(), dims, stream,
                      static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v), static_cast<T*>(o),
                      lse, dims.seq, dims.causal, scale_log2);
}

template <typename T>
cudaError_t dispatch_forward(const void* q, const void* k, const void* v, void* o, float* lse,
                             const AttentionDims& dims, cudaStream_t stream) {
  if (dims.head_dim == 64) return launch_forward<T, 64>(q, k, v, o, lse, dims, stream);
  return launch_forward<T, 128>(q, k, v, o, lse, dims, stream);
}

}  // namespace

std::string flash_attention_unsupported_reason(DType dtype, const AttentionDims& dims) {
  if (dtype != DType::bf16 && dtype != DType::fp16) {
    return fmt::format("fused attention supports bf16 and fp16, not {}", dtype_name(dtype));
  }
  if (dims.head_dim != 64 && dims.head_dim != 128) {
    return fmt::format("fused attention supports head dims 64 and 128 (d = {})", dims.head_dim);
  }
  if (dims.seq < 1 || dims.batch < 1 || dims.heads < 1) return "fused attention needs b, h and s >= 1";
  if (dims.slices() > 65535) return fmt::format("fused attention needs b*h <= 65535 (b*h = {})", dims.slices());
  return "";
}

cudaError_t flash_attention_forward(DType dtype, const void* q, const void* k, const void* v, void* o, float* lse,
                                    const AttentionDims& dims, cudaStream_t stream) {
  if (!flash_attention_unsupported_reason(dtype, dims).empty()) return cudaErrorInvalidValue;
  for (const void* p : {q, k, v, static_cast<const void*>(o)}) {
    if (reinterpret_cast<std::uintptr_t>(p) % 16 != 0) return cudaErrorInvalidValue;
  }
  if (dtype == DType::bf16) return dispatch_forward<__nv_bfloat16>(q, k, v, o, lse, dims, stream);
  return dispatch_forward<__half>(q, k, v, o, lse, dims, stream);
}

}  // namespace wflops::kernels
