// A plain shared-memory tiled tensor-core matmul written with nvcuda::wmma, in the style of
// llm.c's dev/cuda: one operation, short and readable, the CPU reference beside it. Its purpose is
// to show what a classic tiled kernel reaches next to cuBLAS, not to compete with it.
//
// The product is "TN" (see matmul_wmma.cuh): C (col-major M x N) = A (row-major M x K) * B^T with B
// row-major N x K. Both operands are therefore contiguous along K, which is what makes this layout
// the easy one: every 16-byte global load reads 8 consecutive k of one row of A or of B.
//
// Design
//   * Block tile 128 x 128 (M x N), BK = 32, 256 threads = 8 warps arranged 2 (M) x 4 (N).
//   * Each warp computes a 64 x 32 warp tile = 4 x 2 wmma 16x16x16 fragments, fp32 accumulators
//     (8 fragments x 8 floats = 64 registers per thread).
//   * Global -> shared with cp.async, 16 bytes per copy, double buffered: the copy of k-tile t+1
//     is in flight while the tensor cores work on k-tile t. Out-of-range rows (M or N edge) and
//     out-of-range k (the last k-tile when K % 32 != 0) are zero-filled by cp.async itself, so the
//     main loop has no edge cases. K % 8 == 0 makes a 16-byte chunk entirely in or out of range.
//   * Shared tiles are [128 rows][32 + 8 padding] elements: an 80-byte row stride puts the eight
//     16-byte row pieces that a fragment load (ldmatrix) reads at once in eight different bank
//     groups. Fragment loads are ldmatrix for both types (wmma_tile::load_shared).
//   * __launch_bounds__(256, 2): at most 128 registers, so two blocks (16 warps) share an SM and
//     one block's barrier waits are covered by the other's math.
//   * Epilogue: wmma can only store fp32 accumulators, so each warp stages 64 x 16 floats (one
//     column of its fragments) in shared memory, converts to 16 bits, and writes whole 128-byte
//     column segments of C (column-major) with bounds checks: 16-byte stores where M % 8 == 0 and
//     C is aligned, element stores otherwise (the M edge, odd M).
//   Shared memory: 2 stages x (A + B) x 128 x 40 x 2 bytes = 40 KiB static; the epilogue reuses it.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include <cstdint>
#include <string>

#include "common/wmma_tile.cuh"
#include "matmul/matmul_wmma.cuh"

namespace wflops::kernels {
namespace {

namespace wmma = nvcuda::wmma;

constexpr int kBM = 128;  // block tile rows (M)
constexpr int kBN = 128;  // block tile columns (N)
constexpr int kBK = 32;   // k per main-loop step
constexpr int kWarpsM = 2;
constexpr int kWarpsN = 4;
constexpr int kThreads = 32 * kWarpsM * kWarpsN;                       // 256
constexpr int kWM = kBM / kWarpsM;                                     // 64: warp tile rows
constexpr int kWN = kBN / kWarpsN;                                     // 32: warp tile columns
constexpr int kFragsM = kWM / 16;                                      // 4
constexpr int kFragsN = kWN / 16;                                      // 2
constexpr int kLds = kBK + 8;                                          // shared row stride in elements (80 bytes)
constexpr int kStages = 2;                                             // double buffering
constexpr int kTileElems = kBM * kLds;                                 // one operand, one stage (kBM == kBN)
constexpr int kChunksPerRow = kBK / 8;                                 // 16-byte chunks per tile row: 4
constexpr int kChunksPerThread = kBM * kChunksPerRow / kThreads;       // 2 per operand per k-tile
constexpr int kStageLd = kWM + 4;                                      // epilogue staging column stride in floats
constexpr int kSmemBytes = kStages * 2 * kTileElems * 2;               // 40960
constexpr int kEpilogueBytes = kWarpsM * kWarpsN * 16 * kStageLd * 4;  // 34816

static_assert(kBM == kBN, "one load loop serves both operands");
static_assert(kBM * kChunksPerRow % kThreads == 0, "every thread copies the same number of chunks");
static_assert(kEpilogueBytes <= kSmemBytes, "the epilogue staging reuses the main-loop tiles");
static_assert(kLds % 8 == 0 && kStageLd % 4 == 0, "wmma ldm: multiple of 16 bytes");
// wmma pointers must be 32-byte aligned: fragment rows start at multiples of 16 rows * 80 bytes.
static_assert((16 * kLds * 2) % 32 == 0 && (16 * kStageLd * 4) % 32 == 0, "32-byte aligned fragments");

// cp.async copies, the fragment loads (ldmatrix for bf16 too) and the 16-byte stores of the
// epilogue are common/wmma_tile.cuh's.
using namespace wmma_tile;

// One block computes the 128 x 128 tile of C at (blockIdx.x * 128, blockIdx.y * 128).
template <typename T>
__global__ void __launch_bounds__(kThreads, 2)
    matmul_wmma_kernel(const T* __restrict__ A, const T* __restrict__ B, T* __restrict__ C, long M, long N, long K,
                       bool vector_store) {
  __shared__ __align__(128) unsigned char smem[kSmemBytes];
  T* const As = reinterpret_cast<T*>(smem);  // [kStages][kBM][kLds]: rows of A, contiguous in k
  T* const Bs = As + kStages * kTileElems;   // [kStages][kBN][kLds]: rows of B, contiguous in k

  const int tid = static_cast<int>(threadIdx.x);
  const int warp = tid / 32;
  const int lane = tid % 32;
  const int warp_m = warp % kWarpsM;
  const int warp_n = warp / kWarpsM;
  // 64-bit from here on: M * K can exceed 2^31.
  const long block_m = static_cast<long>(blockIdx.x) * kBM;
  const long block_n = static_cast<long>(blockIdx.y) * kBN;

  // Issues the copies of k-tile [k0, k0 + 32) of A and B into `stage`. Consecutive threads take
  // consecutive 16-byte chunks of a row, so a warp reads 8 rows x 64 contiguous bytes of each.
  auto load_tile = [&](int stage, long k0) {
#pragma unroll
    for (int c = 0; c < kChunksPerThread; ++c) {
      const int chunk = tid + c * kThreads;
      const int row = chunk / kChunksPerRow;
      const int col = (chunk % kChunksPerRow) * 8;
      const long k = k0 + col;
      const long gm = block_m + row;
      const long gn = block_n + row;
      const bool a_ok = gm < M && k < K;  // K % 8 == 0: the whole chunk is in range, or none of it
      const bool b_ok = gn < N && k < K;
      // An invalid copy reads nothing, but still gets a valid address (the matrix's start).
      cp_async_16(As + stage * kTileElems + row * kLds + col, a_ok ? A + gm * K + k : A, a_ok);
      cp_async_16(Bs + stage * kTileElems + row * kLds + col, b_ok ? B + gn * K + k : B, b_ok);
    }
  };

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kFragsM][kFragsN];
#pragma unroll
  for (int i = 0; i < kFragsM; ++i)
#pragma unroll
    for (int j = 0; j < kFragsN; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  const long num_k_tiles = (K + kBK - 1) / kBK;
  load_tile(0, 0);
  cp_async_commit();
  for (long kt = 0; kt < num_k_tiles; ++kt) {
    const int stage = static_cast<int>(kt % kStages);
    // Start the next tile's copy into the other stage (free: the barrier at the end of the
    // previous iteration guarantees that every warp has finished reading it).
    if (kt + 1 < num_k_tiles) load_tile((stage + 1) % kStages, (kt + 1) * kBK);
    // Commit even when nothing was issued: an empty group keeps "all but the newest group" equal
    // to "everything up to tile kt" on the last iteration too.
    cp_async_commit();
    cp_async_wait<1>();  // this thread's copies of tile kt have landed ...
    __syncthreads();     // ... and so have everyone else's.

    const T* a = As + stage * kTileElems + warp_m * kWM * kLds;  // this warp's 64 rows of A
    const T* b = Bs + stage * kTileElems + warp_n * kWN * kLds;  // this warp's 32 rows of B
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      // A (m, k) at a[m * kLds + k]: row-major. B^T's (k, n) at b[n * kLds + k]: column-major.
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa[kFragsM];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb[kFragsN];
#pragma unroll
      for (int i = 0; i < kFragsM; ++i) load_shared(fa[i], a + i * 16 * kLds + kk, kLds);
#pragma unroll
      for (int j = 0; j < kFragsN; ++j) load_shared(fb[j], b + j * 16 * kLds + kk, kLds);
#pragma unroll
      for (int i = 0; i < kFragsM; ++i)
#pragma unroll
        for (int j = 0; j < kFragsN; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();  // every warp is done with `stage` before it is refilled
  }
  // Only the empty group of the last iteration can be outstanding; wait anyway before the
  // shared memory is reused. The loop's final barrier ordered all reads of the tiles before this.
  cp_async_wait<0>();

  // Epilogue. Staging area of this warp: 64 rows x 16 columns of floats, column-major, column
  // stride kStageLd = 68 (not 64: keeps the accumulator stores free of bank conflicts).
  float* const staging = reinterpret_cast<float*>(smem) + warp * 16 * kStageLd;
  const long warp_row0 = block_m + warp_m * kWM;
#pragma unroll
  for (int j = 0; j < kFragsN; ++j) {
#pragma unroll
    for (int i = 0; i < kFragsM; ++i)
      wmma::store_matrix_sync(staging + i * 16, acc[i][j], kStageLd, wmma::mem_col_major);
    __syncwarp();
    // 16 columns x 64 rows = 128 runs of 8 consecutive rows; 4 per lane. Eight lanes write one
    // column's 64 rows: 128 contiguous bytes of C.
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      const int run = p * 32 + lane;
      const int col = run / 8;
      const int row = (run % 8) * 8;
      const long gm = warp_row0 + row;
      const long gn = block_n + warp_n * kWN + j * 16 + col;
      if (gm >= M || gn >= N) continue;
      const float* src = staging + col * kStageLd + row;
      T* dst = C + gn * M + gm;
      if (vector_store && gm + 8 <= M) {
        store_run8(dst, src);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e)
          if (gm + e < M) dst[e] = vec::from_float<T>(src[e]);
      }
    }
    __syncwarp();  // all lanes have read the staging area before the next column overwrites it
  }
}

}  // namespace

std::string matmul_wmma_unsupported_reason(DType dtype, long M, long N, long K) {
  if (dtype != DType::bf16 && dtype != DType::fp16)
    return "the wmma matmul supports only bf16 and fp16 (dtype = " + std::string(dtype_name(dtype)) + ")";
  if (M < 1 || N < 1 || K < 1)
    return "M, N and K must be positive (M = " + std::to_string(M) + ", N = " + std::to_string(N) +
           ", K = " + std::to_string(K) + ")";
  if (K % 8 != 0) return "K must be a multiple of 8 for 16-byte loads (K = " + std::to_string(K) + ")";
  // Tiles of N go on gridDim.y (at most 65535); tiles of M on gridDim.x (at most 2^31 - 1).
  if ((N + kBN - 1) / kBN > 65535)
    return "N is too large for the grid (N = " + std::to_string(N) + ", at most " + std::to_string(65535L * kBN) + ")";
  if ((M + kBM - 1) / kBM > 2147483647L) return "M is too large for the grid (M = " + std::to_string(M) + ")";
  return "";
}

cudaError_t matmul_wmma(DType dtype, const void* A, const void* B, void* C, long M, long N, long K,
                        cudaStream_t stream) {
  if (!matmul_wmma_unsupported_reason(dtype, M, N, K).empty()) return cudaErrorInvalidValue;
  // cp.async copies 16 bytes at a time: every row of A and B must start 16-byte aligned, which
  // K % 8 == 0 gives for all rows once the matrices' starts are aligned.
  if (A == nullptr || B == nullptr || C == nullptr || !vec::aligned16(A) || !vec::aligned16(B))
    return cudaErrorInvalidValue;
  // Columns of C start 16-byte aligned only when M % 8 == 0 (and C itself is aligned).
  const bool vector_store = M % 8 == 0 && vec::aligned16(C);
  const dim3 grid(static_cast<unsigned>((M + kBM - 1) / kBM), static_cast<unsigned>((N + kBN - 1) / kBN));
  const dim3 block(kThreads);
  // Shared memory is static (40 KiB, under the 48 KiB default): no attribute to set. On a GPU
  // older than sm_80 the launch fails with cudaErrorNoKernelImageForDevice, returned below.
  if (dtype == DType::bf16) {
    matmul_wmma_kernel<__nv_bfloat16>
        <<<grid, block, 0, stream>>>(static_cast<const __nv_bfloat16*>(A), static_cast<const __nv_bfloat16*>(B),
                                     static_cast<__nv_bfloat16*>(C), M, N, K, vector_store);
  } else {
    matmul_wmma_kernel<__half><<<grid, block, 0, stream>>>(static_cast<const __half*>(A), static_cast<const __half*>(B),
                                                           static_cast<__half*>(C), M, N, K, vector_store);
  }
  // Launch/configuration errors only; errors during execution surface at the next synchronisation.
  return cudaGetLastError();
}

void matmul_tn_reference(const double* A, const double* B, double* C, long M, long N, long K) {
  for (long j = 0; j < N; ++j) {
    for (long i = 0; i < M; ++i) {
      double sum = 0.0;
      for (long k = 0; k < K; ++k) sum += A[i * K + k] * B[j * K + k];
      C[i + j * M] = sum;
    }
  }
}

}  // namespace wflops::kernels
