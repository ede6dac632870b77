// Device-side pieces of our shared-memory tiled wmma GEMMs (matmul/matmul_wmma.cu and
// moe/moe_grouped_gemm.cu): cp.async copies from global into shared memory, fragment loads that are
// ldmatrix for bf16 as well as fp16, and the epilogue's 16-byte stores of eight staged floats.
// Included only by .cu files; sm_80+.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include "common/elementwise_vector.cuh"

namespace wflops::kernels::wmma_tile {

// --- cp.async (sm_80+): asynchronous 16-byte global -> shared copies -----------------------------
// `.cg` bypasses L1: a block copies each byte once, and the reuse across blocks happens in L2.
// With src_bytes = 0 nothing is read and the 16 destination bytes are zero-filled: that is how the
// tile edges are handled (gmem_src must still be a valid address).
__device__ __forceinline__ void cp_async_16(void* smem_dst, const void* gmem_src, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem_src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most `kPending` of this thread's committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// --- fragment loads from shared memory ------------------------------------------------------------
// For fp16, nvcuda::wmma::load_matrix_sync becomes ldmatrix (LDSM). For bf16, nvcc (13.0) cannot see that
// the pointer is a shared one and emits four generic 32-bit loads per fragment instead (LD.E: 4x the
// instructions, and the generic-address latency). Issuing the very same wmma.load PTX instruction
// with the .shared state space gives bf16 ldmatrix too. A bf16 m16n16k16 A or B fragment is the
// 4 x 32-bit registers that instruction fills, for either layout; the layout qualifier matches the
// fragment's type, so the mma_sync that consumes it uses the same one.
template <typename Frag, typename T>
__device__ __forceinline__ void load_shared(Frag& f, const T* p, unsigned ldm) {
  nvcuda::wmma::load_matrix_sync(f, p, ldm);
}

template <typename Layout>
using Bf16FragA = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, Layout>;
template <typename Layout>
using Bf16FragB = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __nv_bfloat16, Layout>;
static_assert(sizeof(Bf16FragA<nvcuda::wmma::row_major>::x) == 16 &&
                  sizeof(Bf16FragA<nvcuda::wmma::col_major>::x) == 16 &&
                  sizeof(Bf16FragB<nvcuda::wmma::row_major>::x) == 16 &&
                  sizeof(Bf16FragB<nvcuda::wmma::col_major>::x) == 16,
              "bf16 16x16x16 fragment: 4 registers");

#define WFLOPS_WMMA_LOAD_SHARED(FRAG, PTX)                                                     \
  __device__ __forceinline__ void load_shared(FRAG& f, const __nv_bfloat16* p, unsigned ldm) { \
    unsigned* r = reinterpret_cast<unsigned*>(f.x);                                            \
    asm volatile(PTX " {%0, %1, %2, %3}, [%4], %5;\n"                                          \
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])                              \
                 : "r"(static_cast<unsigned>(__cvta_generic_to_shared(p))), "r"(ldm)           \
                 : "memory");                                                                  \
  }
WFLOPS_WMMA_LOAD_SHARED(Bf16FragA<nvcuda::wmma::row_major>, "wmma.load.a.sync.aligned.row.m16n16k16.shared.bf16")
WFLOPS_WMMA_LOAD_SHARED(Bf16FragA<nvcuda::wmma::col_major>, "wmma.load.a.sync.aligned.col.m16n16k16.shared.bf16")
WFLOPS_WMMA_LOAD_SHARED(Bf16FragB<nvcuda::wmma::row_major>, "wmma.load.b.sync.aligned.row.m16n16k16.shared.bf16")
WFLOPS_WMMA_LOAD_SHARED(Bf16FragB<nvcuda::wmma::col_major>, "wmma.load.b.sync.aligned.col.m16n16k16.shared.bf16")
#undef WFLOPS_WMMA_LOAD_SHARED

// One 16-byte global store. Written out because nvcc (13.0) splits the plain
// `*reinterpret_cast<uint4*>(p) = v` of the GEMM epilogues into four 4-byte stores.
__device__ __forceinline__ void store_global_16(void* p, uint4 v) {
  asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"l"(p), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
               : "memory");
}

// Two floats as one 32-bit word of two T (fp16 or bf16, rounded to nearest even), the first (the
// lower address) in the low half.
__device__ __forceinline__ unsigned bits(__half x) { return __half_as_ushort(x); }
__device__ __forceinline__ unsigned bits(__nv_bfloat16 x) { return __bfloat16_as_ushort(x); }
template <typename T>
__device__ __forceinline__ unsigned pack2(float first, float second) {
  return bits(vec::from_float<T>(first)) | (bits(vec::from_float<T>(second)) << 16);
}

// Eight consecutive floats of an epilogue's staging area (src 16-byte aligned) as eight T at dst with
// one 16-byte store (dst 16-byte aligned).
template <typename T>
__device__ __forceinline__ void store_run8(T* dst, const float* src) {
  const float4 lo = *reinterpret_cast<const float4*>(src);
  const float4 hi = *reinterpret_cast<const float4*>(src + 4);
  store_global_16(dst,
                  make_uint4(pack2<T>(lo.x, lo.y), pack2<T>(lo.z, lo.w), pack2<T>(hi.x, hi.y), pack2<T>(hi.z, hi.w)));
}

}  // namespace wflops::kernels::wmma_tile
