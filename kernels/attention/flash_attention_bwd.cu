#include <cmath>

#include "attention/attention_softmax.cuh"
#include "attention/flash_attention_bwd.cuh"
#include "attention/flash_attention_common.cuh"
#include "attention/flash_attention_fwd.cuh"

namespace wflops::kernels {

namespace {

using namespace flash;

constexpr int kBlockQ = static_cast<int>(kFlashBackwardBlockQ);
constexpr int kBlockK = static_cast<int>(kFlashBackwardBlockK);  // 4 warps x 16 keys
constexpr int kThreads = 128;
constexpr int kDsStride = kBlockK + static_cast<int>(kFlashRowPad);  // dS tile [query][key], padded

template <int kDim>
constexpr int stride() {
  return kDim + static_cast<int>(kFlashRowPad);
}
template <int kDim>
constexpr std::size_t shared_bytes() {
  // K, V (kBlockK rows), 2 x Q, 2 x dO (kBlockQ rows), dS, then 2 x L and 2 x D (fp32).
  return static_cast<std::size_t>(2 * kBlockK + 4 * kBlockQ) * stride<kDim>() * 2 +
         static_cast<std::size_t>(kBlockQ) * kDsStride * 2 + 4 * kBlockQ * sizeof(float);
}
static_assert(shared_bytes<64>() == flash_backward_shared_bytes(64) &&
                  shared_bytes<128>() == flash_backward_shared_bytes(128),
              "the footprint in the header must match the layout the kernel uses");
// Two blocks per SM on an A100 at d = 128, as many as the registers allow (128 threads of up to 255
// registers): 164 KB of shared memory per SM on compute capability 8.0 (CUDA C++ Programming Guide,
// technical specifications per compute capability) and 1 KB reserved by the driver per block.
static_assert(2 * (flash_backward_shared_bytes(128) + 1024) <= 164 * 1024, "two blocks per A100 SM at d = 128");

// Per warp: S^T = K_w Q^T for its 16 keys x 32 queries (A from `rows`, B from `cols`, both [row][d]).
template <typename T, int kDim>
__device__ inline void warp_abt(float (&c)[kBlockQ / 8][4], const T* rows, const T* cols, int warp, int lane) {
  constexpr int kStride = stride<kDim>();
#pragma unroll
  for (int i = 0; i < kBlockQ / 8; ++i) c[i][0] = c[i][1] = c[i][2] = c[i][3] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < kDim / 16; ++kk) {
    std::uint32_t a[4];
    ldmatrix_x4(a, rows + (warp * 16 + (lane & 15)) * kStride + kk * 16 + (lane >> 4) * 8);
    mma_abt_step<T, kBlockQ / 8, kStride>(c, a, cols, kk, lane);
  }
}

template <typename T, int kDim>
__global__ void __launch_bounds__(kThreads)
    flash_backward_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                          const T* __restrict__ d_o, const float* __restrict__ lse, const float* __restrict__ row_dot,
                          float* __restrict__ dq_acc, T* __restrict__ dk, T* __restrict__ dv, long seq, bool causal,
                          float scale, float scale_log2) {
  constexpr int kStride = stride<kDim>();
  constexpr int kOTiles = kDim / 8;
  constexpr int kQTiles = kBlockQ / 8;
  constexpr float kLog2e = 1.4426950408889634f;
  extern __shared__ __align__(16) unsigned char shared_raw[];
  T* sk = reinterpret_cast<T*>(shared_raw);
  T* sv = sk + kBlockK * kStride;
  T* sq_buf = sv + kBlockK * kStride;           // two buffers of kBlockQ rows
  T* sdo_buf = sq_buf + 2 * kBlockQ * kStride;  // two buffers
  T* sds = sdo_buf + 2 * kBlockQ * kStride;
  float* sl_buf = reinterpret_cast<float*>(sds + kBlockQ * kDsStride);  // two buffers of kBlockQ
  float* sd_buf = sl_buf + 2 * kBlockQ;                                 // two buffers

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  const long k0 = static_cast<long>(blockIdx.x) * kBlockK;
  const long slice_rows = static_cast<long>(blockIdx.y) * seq;
  const long slice = slice_rows * kDim;
  const long my_key[2] = {k0 + warp * 16 + g, k0 + warp * 16 + g + 8};

  // One query tile's inputs into buffer `b`: Q and dO rows, and L and D (threads 0-31 and 32-63, one
  // float each). Rows at or past seq read as zeros: such queries are masked out of P (P = 0, so dS = 0
  // whatever L and D hold), so their L needs no +inf guard.
  auto load_query_tile = [&](int b, long q0) {
    load_tile_async<T, kBlockQ, kDim, kStride, kThreads>(sq_buf + b * kBlockQ * kStride, q + slice, q0, seq, tid);
    load_tile_async<T, kBlockQ, kDim, kStride, kThreads>(sdo_buf + b * kBlockQ * kStride, d_o + slice, q0, seq, tid);
    if (tid < 2 * kBlockQ) {
      const int row = tid % kBlockQ;
      const bool valid = q0 + row < seq;
      const float* src = (tid < kBlockQ ? lse : row_dot) + slice_rows + (valid ? q0 + row : 0);
      cp_async4((tid < kBlockQ ? sl_buf : sd_buf) + b * kBlockQ + row, src, valid);
    }
  };

  // K and V, and the first query tile, in one group.
  load_tile_async<T, kBlockK, kDim, kStride, kThreads>(sk, k + slice, k0, seq, tid);
  load_tile_async<T, kBlockK, kDim, kStride, kThreads>(sv, v + slice, k0, seq, tid);
  // With a causal mask, queries before this key tile see none of its keys.
  const long q_begin = causal ? k0 / kBlockQ * kBlockQ : 0;
  load_query_tile(0, q_begin);
  cp_async_commit();

  float dk_acc[kOTiles][4], dv_acc[kOTiles][4];
#pragma unroll
  for (int i = 0; i < kOTiles; ++i) {
#pragma unroll
    for (int c = 0; c < 4; ++c) dk_acc[i][c] = dv_acc[i][c] = 0.0f;
  }

  // Two barriers per query tile. The first: this tile's copies have landed (each thread waits for its
  // own, the barrier publishes them), and every warp has finished the previous tile's dQ, which read
  // dS. The second: dS is written. The prefetch at the top of a tile overwrites the buffer the previous
  // tile used, whose Q, dO, L and D every warp last read before that tile's second barrier.
  int buf = 0;
  for (long q0 = q_begin; q0 < seq; q0 += kBlockQ, buf ^= 1) {
    if (q0 + kBlockQ < seq) {
      load_query_tile(buf ^ 1, q0 + kBlockQ);
      cp_async_commit();
      cp_async_wait<1>();  // all but the group just committed
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const T* sq = sq_buf + buf * kBlockQ * kStride;
    const T* sdo = sdo_buf + buf * kBlockQ * kStride;
    const float* sl = sl_buf + buf * kBlockQ;
    const float* sd = sd_buf + buf * kBlockQ;

    // P^T (16 keys x 32 queries per warp), recomputed from L.
    float p[kQTiles][4];
    warp_abt<T, kDim>(p, sk, sq, warp, lane);
#pragma unroll
    for (int i = 0; i < kQTiles; ++i) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int ql = i * 8 + 2 * t + (c & 1);
        const long query = q0 + ql;
        const long key = my_key[c >> 1];
        const bool masked = query >= seq || key >= seq || (causal && key > query);
        p[i][c] = masked ? 0.0f : exp2f(p[i][c] * scale_log2 - sl[ql] * kLog2e);
      }
    }
    mma_pv<T, kBlockQ, kDim, kStride>(dv_acc, p, sdo, lane);  // dV += P^T dO

    // dS^T = P^T (dP^T - D), dP^T = V dO^T.
    float ds[kQTiles][4];
    warp_abt<T, kDim>(ds, sv, sdo, warp, lane);
#pragma unroll
    for (int i = 0; i < kQTiles; ++i) {
#pragma unroll
      for (int c = 0; c < 4; ++c) ds[i][c] = p[i][c] * (ds[i][c] - sd[i * 8 + 2 * t + (c & 1)]);
    }
    mma_pv<T, kBlockQ, kDim, kStride>(dk_acc, ds, sq, lane);  // dK += dS^T Q (scaled at the end)

    // dS to shared memory as [query][key], for dQ = dS K across all four warps' keys.
#pragma unroll
    for (int i = 0; i < kQTiles; ++i) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        sds[(i * 8 + 2 * t + (c & 1)) * kDsStride + warp * 16 + g + 8 * (c >> 1)] = from_float<T>(ds[i][c]);
      }
    }
    __syncthreads();

    // dQ tile (32 queries x kDim): warp w takes query rows 16 (w % 2) .. and half of the columns.
    {
      constexpr int kHalf = kDim / 2;
      const int row0 = (warp & 1) * 16;
      const int col0 = (warp >> 1) * kHalf;
      float acc[kHalf / 8][4];
#pragma unroll
      for (int i = 0; i < kHalf / 8; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < kBlockK / 16; ++kk) {
        std::uint32_t a[4];
        ldmatrix_x4(a, sds + (row0 + (lane & 15)) * kDsStride + kk * 16 + (lane >> 4) * 8);
#pragma unroll
        for (int dn = 0; dn < kHalf / 16; ++dn) {
          std::uint32_t b[4];
          ldmatrix_x4_trans(
              b, sk + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kStride + col0 + dn * 16 + (lane >> 4) * 8);
          mma<T>(acc[2 * dn], a, b[0], b[1]);
          mma<T>(acc[2 * dn + 1], a, b[2], b[3]);
        }
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const long query = q0 + row0 + g + 8 * r;
        if (query >= seq) continue;
        float* out = dq_acc + (slice_rows + query) * kDim + col0 + 2 * t;  // 8-byte aligned: 2t is even
#pragma unroll
        for (int i = 0; i < kHalf / 8; ++i) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
          // One atomic for the two adjacent columns: atomicAdd on float2 exists from compute capability
          // 9.x (CUDA C++ Programming Guide, atomicAdd; atomic per element, which is all a sum needs).
          atomicAdd(reinterpret_cast<float2*>(out + i * 8),
                    make_float2(scale * acc[i][2 * r], scale * acc[i][2 * r + 1]));
#else
          atomicAdd(out + i * 8, scale * acc[i][2 * r]);
          atomicAdd(out + i * 8 + 1, scale * acc[i][2 * r + 1]);
#endif
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const long key = my_key[r];
    if (key >= seq) continue;
#pragma unroll
    for (int i = 0; i < kOTiles; ++i) {
      const long at = slice + key * kDim + i * 8 + 2 * t;
      *reinterpret_cast<std::uint32_t*>(dk + at) = pack2<T>(scale * dk_acc[i][2 * r], scale * dk_acc[i][2 * r + 1]);
      *reinterpret_cast<std::uint32_t*>(dv + at) = pack2<T>(dv_acc[i][2 * r], dv_acc[i][2 * r + 1]);
    }
  }
}

template <typename T>
__global__ void convert_kernel(const float* in, T* out, long count) {
  for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long>(gridDim.x) * blockDim.x) {
    out[i] = from_float<T>(in[i]);
  }
}

template <typename T, int kDim>
cudaError_t launch_backward(const void* q, const void* k, const void* v, const void* d_o, const float* lse,
                            const float* row_dot, float* dq_acc, void* dk, void* dv, const AttentionDims& dims,
                            cudaStream_t stream) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(kDim));
  // One block per key tile; two per SM need the largest carveout (see shared_bytes).
  return launch_tiles(flash_backward_kernel<T, kDim>, kBlockK, kThreads, shared_bytes<kDim>(), dims, stream,
                      static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
                      static_cast<const T*>(d_o), lse, row_dot, dq_acc, static_cast<T*>(dk), static_cast<T*>(dv),
                      dims.seq, dims.causal, static_cast<float>(scale), static_cast<float>(scale * 1.4426950408889634));
}

template <typename T>
cudaError_t run_backward(const void* q, const void* k, const void* v, const void* d_o, const float* lse,
                         const float* row_dot, float* dq_acc, void* dq, void* dk, void* dv, const AttentionDims& dims,
                         cudaStream_t stream) {
  cudaError_t e = dims.head_dim == 64
                      ? launch_backward<T, 64>(q, k, v, d_o, lse, row_dot, dq_acc, dk, dv, dims, stream)
                      : launch_backward<T, 128>(q, k, v, d_o, lse, row_dot, dq_acc, dk, dv, dims, stream);
  if (e != cudaSuccess) return e;
  const long count = dims.rows() * dims.head_dim;
  const unsigned grid = static_cast<unsigned>(std::min<long>((count + 255) / 256, 65536L * 8));
  convert_kernel<<<grid, 256, 0, stream>>>(dq_acc, static_cast<T*>(dq), count);
  return cudaGetLastError();
}

}  // namespace

std::size_t flash_attention_backward_workspace_bytes(const AttentionDims& dims) {
  const std::size_t rows = static_cast<std::size_t>(dims.rows());
  // dQ accumulators, then D, each rounded to 256 bytes.
  const std::size_t acc = (rows * static_cast<std::size_t>(dims.head_dim) * sizeof(float) + 255) / 256 * 256;
  return acc + (rows * sizeof(float) + 255) / 256 * 256;
}

cudaError_t flash_attention_backward(DType dtype, const void* q, const void* k, const void* v, const void* o,
                                     const void* d_o, const float* lse, void* dq, void* dk, void* dv, void* workspace,
                                     const AttentionDims& dims, cudaStream_t stream) {
  if (!flash_attention_unsupported_reason(dtype, dims).empty() || workspace == nullptr) return cudaErrorInvalidValue;
  // The workspace too: its dQ accumulators take 8-byte float2 atomics on sm_90.
  for (const void* p : {q, k, v, d_o, static_cast<const void*>(dk), static_cast<const void*>(dv),
                        static_cast<const void*>(workspace)}) {
    if (reinterpret_cast<std::uintptr_t>(p) % 16 != 0) return cudaErrorInvalidValue;
  }
  const std::size_t rows = static_cast<std::size_t>(dims.rows());
  const std::size_t acc_bytes = rows * static_cast<std::size_t>(dims.head_dim) * sizeof(float);
  float* dq_acc = static_cast<float*>(workspace);
  float* row_dot = reinterpret_cast<float*>(static_cast<char*>(workspace) + (acc_bytes + 255) / 256 * 256);
  cudaError_t e = cudaMemsetAsync(dq_acc, 0, acc_bytes, stream);
  if (e != cudaSuccess) return e;
  e = attention_row_dot(dtype, d_o, o, row_dot, dims, stream);
  if (e != cudaSuccess) return e;
  if (dtype == DType::bf16)
    return run_backward<__nv_bfloat16>(q, k, v, d_o, lse, row_dot, dq_acc, dq, dk, dv, dims, stream);
  return run_backward<__half>(q, k, v, d_o, lse, row_dot, dq_acc, dq, dk, dv, dims, stream);
}

}  // namespace wflops::kernels
