// Device helpers shared by the fused attention kernels (CUDA only: include from .cu files):
// asynchronous 16-byte copies into shared memory, ldmatrix, the m16n8k16 tensor-core MMA with fp32
// accumulation for bf16 and fp16 and the warp-level products built from it, and the launches'
// shared-memory attributes.
//
// Fragment layouts of mma.m16n8k16 (16-bit inputs), with g = lane / 4 and t = lane % 4:
//   A (16x16, row-major): a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8, 2t+8..)
//   B (16x8, "col"):      b0 = (k = 2t..2t+1, n = g), b1 = (k = 2t+8.., n = g)
//   C (16x8, fp32):       c0,c1 = (g, 2t..2t+1), c2,c3 = (g+8, 2t..2t+1)
// ldmatrix.x4 loads four 8x8 matrices whose rows are addressed by lanes 0-7, 8-15, 16-23, 24-31;
// register i of lane l holds row l/4, columns 2(l%4).. of matrix i (transposed with .trans).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "attention/attention_dims.cuh"

namespace wflops::kernels::flash {

__device__ inline std::uint32_t smem_address(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

// Copies 16 bytes, or writes 16 zero bytes when `valid` is false (src is then not read).
__device__ inline void cp_async16(void* dst, const void* src, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(dst)), "l"(src), "r"(src_bytes));
}
// Copies 4 bytes (src 4-byte aligned), or writes 4 zero bytes when `valid` is false. The PTX ISA's
// cp.async takes a copy size of 4 or 8 bytes only with .ca (through L1), 16 with either .ca or .cg.
__device__ inline void cp_async4(void* dst, const void* src, bool valid) {
  const int src_bytes = valid ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_address(dst)), "l"(src), "r"(src_bytes));
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

__device__ inline void ldmatrix_x4(std::uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(p)));
}
__device__ inline void ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(p)));
}

// c += a * b (one m16n8k16 tile).
template <typename T>
__device__ inline void mma(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0, std::uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Two floats as one register of two 16-bit values, `lo` in the low half (the lower column).
template <typename T>
__device__ inline std::uint32_t pack2(float lo, float hi) {
  std::uint32_t r;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    std::memcpy(&r, &v, sizeof r);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    std::memcpy(&r, &v, sizeof r);
  }
  return r;
}

// One k-step (k = kk * 16 ..) of a warp's C += A B^T, C 16 x (8 kTiles): A's 16 x 16 as an A fragment
// in registers, B's rows [row][k] in shared memory (row stride kStride), two n-tiles of 8 rows per
// ldmatrix.
template <typename T, int kTiles, int kStride>
__device__ __forceinline__ void mma_abt_step(float (&c)[kTiles][4], const std::uint32_t (&a)[4], const T* b_rows,
                                             int kk, int lane) {
#pragma unroll
  for (int nn = 0; nn < kTiles / 2; ++nn) {
    std::uint32_t b[4];
    ldmatrix_x4(b, b_rows + (nn * 16 + (lane & 7) + ((lane >> 4) << 3)) * kStride + kk * 16 + ((lane >> 3) & 1) * 8);
    mma<T>(c[2 * nn], a, b[0], b[1]);
    mma<T>(c[2 * nn + 1], a, b[2], b[3]);
  }
}

// A warp's acc (16 rows x kDim) += P Y: P (16 x kInner) in registers in accumulator layout, which is
// already the A fragment layout (two n-tiles per k-step), and Y [kInner][kDim] in shared memory
// (row stride kStride). The forward's O += P V and the backward's dV += P^T dO, dK += dS^T Q.
template <typename T, int kInner, int kDim, int kStride>
__device__ __forceinline__ void mma_pv(float (&acc)[kDim / 8][4], const float (&p)[kInner / 8][4], const T* y,
                                       int lane) {
#pragma unroll
  for (int kk = 0; kk < kInner / 16; ++kk) {
    const std::uint32_t a[4] = {pack2<T>(p[2 * kk][0], p[2 * kk][1]), pack2<T>(p[2 * kk][2], p[2 * kk][3]),
                                pack2<T>(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                                pack2<T>(p[2 * kk + 1][2], p[2 * kk + 1][3])};
#pragma unroll
    for (int dn = 0; dn < kDim / 16; ++dn) {
      std::uint32_t b[4];
      ldmatrix_x4_trans(b, y + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kStride + dn * 16 + (lane >> 4) * 8);
      mma<T>(acc[2 * dn], a, b[0], b[1]);
      mma<T>(acc[2 * dn + 1], a, b[2], b[3]);
    }
  }
}

template <typename T>
__device__ inline T from_float(float x) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __float2bfloat16_rn(x);
  } else {
    return __float2half_rn(x);
  }
}

// Copies rows row0 .. row0+kRows-1 of a [seq][kDim] slice into shared memory with row stride
// kStride elements; rows at or past seq are filled with zeros (so masked products stay finite).
template <typename T, int kRows, int kDim, int kStride, int kThreads>
__device__ inline void load_tile_async(T* dst, const T* slice, long row0, long seq, int tid) {
  constexpr int kChunksPerRow = kDim / 8;  // 16-byte chunks
  constexpr int kChunks = kRows * kChunksPerRow;
  static_assert(kChunks % kThreads == 0, "tile chunks must divide among the threads");
#pragma unroll
  for (int i = 0; i < kChunks / kThreads; ++i) {
    const int chunk = tid + i * kThreads;
    const int r = chunk / kChunksPerRow;
    const int col = (chunk % kChunksPerRow) * 8;
    const bool valid = row0 + r < seq;
    const T* src = slice + (valid ? (row0 + r) * kDim + col : 0);
    cp_async16(dst + r * kStride + col, src, valid);
  }
}

// Launches `kernel` on a grid of (seq / tile_rows rounded up, slices) blocks of `threads` threads
// with `smem` bytes of dynamic shared memory. First, on every launch (cheap, and the attributes are
// per device), it lets the kernel use that much (above 48 KiB a kernel must opt in) and asks for the
// largest shared-memory carveout (a hint), so that the SM's configuration holds two blocks where
// their shared memory allows it. Launch errors only; errors during execution surface later.
template <typename... Params, typename... Args>
cudaError_t launch_tiles(void (*kernel)(Params...), long tile_rows, int threads, std::size_t smem,
                         const AttentionDims& dims, cudaStream_t stream, Args... args) {
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (e != cudaSuccess) return e;
  e = cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                           static_cast<int>(cudaSharedmemCarveoutMaxShared));
  if (e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>((dims.seq + tile_rows - 1) / tile_rows), static_cast<unsigned>(dims.slices()));
  kernel<<<grid, threads, smem, stream>>>(args...);
  return cudaGetLastError();
}

}  // namespace wflops::kernels::flash
