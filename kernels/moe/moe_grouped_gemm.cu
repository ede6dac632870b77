// Grouped GEMM over the MoE experts with device-side expert offsets (see moe_grouped_gemm.cuh).
//
// The tile machinery is the one of matmul_wmma.cu (our WMMA kernel), generalised to operands that
// are contiguous either along the reduction dimension k or along the output dimension:
//   * Block tile 128 x 128, k-step 32, 256 threads = 8 warps (2 along M x 4 along N), each warp a
//     64 x 32 tile of 4 x 2 wmma 16x16x16 bf16 fragments with fp32 accumulators.
//   * Global -> shared with cp.async (16 bytes), double buffered. Chunks outside the expert's rows,
//     the matrix edge or the reduction length are zero-filled by cp.async, so the math has no edge
//     cases; every contiguous dimension is a multiple of 8, so a 16-byte chunk is all in or all out.
//   * An operand contiguous along k is staged as [128 rows][32 + 8]; one contiguous along M or N
//     (the weights of the input gradient, both operands of the weight gradient) as [32 k][128 + 8].
//     Either padding shifts consecutive rows by 16 bytes mod 128, so the 8 rows an ldmatrix reads
//     fall in 8 different bank groups. The wmma layouts (row/col major) follow from the staging.
//   * Epilogue: C is row-major in all three products, so each warp stages 16 rows x 32 columns of
//     floats at a time and writes 16-byte runs of 8 columns, masked by row (the expert's last tile,
//     the M edge) and column (the N edge).
// Row products: blockIdx.x is a tile of the tile map (tiles past its count exit at once), blockIdx.y
// a column tile. Weight gradient: blockIdx = (M tile, N tile, expert); its k loop runs over the
// expert's rows, so an expert with no row writes zeros.
#include <cuda_bf16.h>
#include <mma.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "common/wmma_tile.cuh"
#include "moe/moe_grouped_gemm.cuh"

namespace wflops::kernels {
namespace {

namespace wmma = nvcuda::wmma;
using bf16 = __nv_bfloat16;

constexpr int kBM = kGroupedTileRows;  // 128 rows (M) per block tile
constexpr int kBN = 128;               // columns (N) per block tile
constexpr int kBK = 32;                // k per main-loop step
constexpr int kWarpsM = 2;
constexpr int kWarpsN = 4;
constexpr int kThreads = 32 * kWarpsM * kWarpsN;  // 256
constexpr int kWM = kBM / kWarpsM;                // 64
constexpr int kWN = kBN / kWarpsN;                // 32
constexpr int kFragsM = kWM / 16;                 // 4
constexpr int kFragsN = kWN / 16;                 // 2
constexpr int kLdK = kBK + 8;                     // stride of a k-contiguous tile [128][40]
constexpr int kLdO = kBM + 8;                     // stride of an outer-contiguous tile [32][136]
constexpr int kOperandElems = kBM * kLdK > kBK* kLdO ? kBM* kLdK : kBK* kLdO;  // 5120
constexpr int kStages = 2;
constexpr int kSmemBytes = kStages * 2 * kOperandElems * 2;            // 40960: static, under 48 KiB
constexpr int kChunksPerThread = kBM * kBK / 8 / kThreads;             // 2 chunks of 8 per operand per k-step
constexpr int kStageLd = kWN + 4;                                      // epilogue staging row stride (floats)
constexpr int kEpilogueBytes = kWarpsM * kWarpsN * 16 * kStageLd * 4;  // 18432

static_assert(kBM == kBN, "both operand tiles have 128 outer rows");
static_assert(kBM * kBK / 8 % kThreads == 0, "every thread copies the same number of chunks");
static_assert(kEpilogueBytes <= kSmemBytes, "the epilogue staging reuses the main-loop tiles");
static_assert(kLdK % 8 == 0 && kLdO % 8 == 0 && kStageLd % 4 == 0, "wmma ldm: multiple of 16 bytes");
// wmma pointers must be 32-byte aligned: fragment starts are multiples of 16 rows or 16 columns.
static_assert((16 * kLdK * 2) % 32 == 0 && (16 * kLdO * 2) % 32 == 0 && (kOperandElems * 2) % 32 == 0,
              "32-byte aligned fragments");
static_assert((16 * kStageLd * 4) % 32 == 0, "32-byte aligned staging per warp");

// cp.async copies (src_bytes = 0 reads nothing and zero-fills the 16 shared bytes), fragment loads
// with the .shared state space (ldmatrix for bf16) and the 16-byte stores: common/wmma_tile.cuh.
using namespace wmma_tile;
template <typename Layout>
using FragA = Bf16FragA<Layout>;
template <typename Layout>
using FragB = Bf16FragB<Layout>;

// One operand of a block: `outer_valid` of its 128 outer rows (M for A, N for B) exist, and the
// reduction runs over `k_valid` values of k.
//   k-contiguous:     element (outer, k) at src[outer * ld + k], staged [128][kLdK];
//   outer-contiguous: element (outer, k) at src[k * ld + outer], staged [kBK][kLdO].
// `safe` is an address inside the matrix, given to the copies that read nothing.
struct Operand {
  const bf16* src;
  const bf16* safe;
  long ld;
  int outer_valid;
};

// Issues the copies of k-tile [k0, k0 + 32) of `op` into `dst`. In both layouts consecutive threads
// take consecutive 16-byte chunks of one contiguous row.
template <bool kKContiguous>
__device__ __forceinline__ void load_operand(bf16* dst, const Operand& op, long k0, long k_valid, int tid) {
#pragma unroll
  for (int c = 0; c < kChunksPerThread; ++c) {
    const int chunk = tid + c * kThreads;
    if (kKContiguous) {
      const int row = chunk / (kBK / 8);
      const int col = (chunk % (kBK / 8)) * 8;
      const long k = k0 + col;
      const bool ok = row < op.outer_valid && k < k_valid;
      cp_async_16(dst + row * kLdK + col, ok ? op.src + row * op.ld + k : op.safe, ok);
    } else {
      const int kr = chunk / (kBM / 8);
      const int col = (chunk % (kBM / 8)) * 8;
      const long k = k0 + kr;
      const bool ok = k < k_valid && col < op.outer_valid;
      cp_async_16(dst + kr * kLdO + col, ok ? op.src + k * op.ld + col : op.safe, ok);
    }
  }
}

// The fragment of a staged operand (load_operand's layouts) at outer index `outer` and k offset kk.
template <bool kKContiguous, typename Frag>
__device__ __forceinline__ void load_fragment(Frag& f, const bf16* tile, int outer, int kk) {
  if (kKContiguous) {
    load_shared(f, tile + outer * kLdK + kk, kLdK);  // (outer, k) at [outer * ld + k]
  } else {
    load_shared(f, tile + kk * kLdO + outer, kLdO);  // (outer, k) at [k * ld + outer]
  }
}

using Acc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

// acc = A (128 x k_valid) * B^T (k_valid x 128) for this block, A and B as staged above.
template <bool kAKContiguous, bool kBKContiguous>
__device__ __forceinline__ void main_loop(const Operand& a, const Operand& b, long k_valid,
                                          Acc (&acc)[kFragsM][kFragsN], unsigned char* smem) {
  // A's (m, k) at [m * ld + k] is row major, at [k * ld + m] column major; B's (k, n) at [n * ld + k]
  // is column major, at [k * ld + n] row major.
  using LayoutA = typename std::conditional<kAKContiguous, wmma::row_major, wmma::col_major>::type;
  using LayoutB = typename std::conditional<kBKContiguous, wmma::col_major, wmma::row_major>::type;
  bf16* const As = reinterpret_cast<bf16*>(smem);  // [kStages][kOperandElems]
  bf16* const Bs = As + kStages * kOperandElems;   // [kStages][kOperandElems]
  const int tid = static_cast<int>(threadIdx.x);
  const int warp = tid / 32;
  const int warp_m = warp % kWarpsM;
  const int warp_n = warp / kWarpsM;

#pragma unroll
  for (int i = 0; i < kFragsM; ++i)
#pragma unroll
    for (int j = 0; j < kFragsN; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  const long num_k_tiles = (k_valid + kBK - 1) / kBK;
  load_operand<kAKContiguous>(As, a, 0, k_valid, tid);
  load_operand<kBKContiguous>(Bs, b, 0, k_valid, tid);
  cp_async_commit();
  for (long kt = 0; kt < num_k_tiles; ++kt) {
    const int stage = static_cast<int>(kt % kStages);
    const int next = (stage + 1) % kStages;
    // The other stage is free: the barrier ending the previous iteration follows its last read.
    if (kt + 1 < num_k_tiles) {
      load_operand<kAKContiguous>(As + next * kOperandElems, a, (kt + 1) * kBK, k_valid, tid);
      load_operand<kBKContiguous>(Bs + next * kOperandElems, b, (kt + 1) * kBK, k_valid, tid);
    }
    cp_async_commit();   // possibly empty: keeps "all but the newest group" = "up to tile kt"
    cp_async_wait<1>();  // this thread's copies of tile kt have landed ...
    __syncthreads();     // ... and everyone else's.

    const bf16* as = As + stage * kOperandElems;
    const bf16* bs = Bs + stage * kOperandElems;
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      FragA<LayoutA> fa[kFragsM];
      FragB<LayoutB> fb[kFragsN];
#pragma unroll
      for (int i = 0; i < kFragsM; ++i) load_fragment<kAKContiguous>(fa[i], as, warp_m * kWM + i * 16, kk);
#pragma unroll
      for (int j = 0; j < kFragsN; ++j) load_fragment<kBKContiguous>(fb[j], bs, warp_n * kWN + j * 16, kk);
#pragma unroll
      for (int i = 0; i < kFragsM; ++i)
#pragma unroll
        for (int j = 0; j < kFragsN; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();  // every warp is done with `stage` before it is refilled
  }
  cp_async_wait<0>();  // only empty groups can be outstanding; the shared memory is reused next
}

// Writes the block's accumulators to the row-major C (row stride ldc), `c` pointing at the block's
// (0, 0): rows < rows_valid and columns < cols_valid only. ldc % 8 == 0 and c 16-byte aligned.
__device__ __forceinline__ void store_tile(const Acc (&acc)[kFragsM][kFragsN], bf16* c, long ldc, int rows_valid,
                                           int cols_valid, unsigned char* smem) {
  const int tid = static_cast<int>(threadIdx.x);
  const int warp = tid / 32;
  const int lane = tid % 32;
  const int warp_m = warp % kWarpsM;
  const int warp_n = warp / kWarpsM;
  float* const staging = reinterpret_cast<float*>(smem) + warp * 16 * kStageLd;  // 16 x 32 floats
#pragma unroll
  for (int i = 0; i < kFragsM; ++i) {
#pragma unroll
    for (int j = 0; j < kFragsN; ++j) {
      wmma::store_matrix_sync(staging + j * 16, acc[i][j], kStageLd, wmma::mem_row_major);
    }
    __syncwarp();
    // 16 rows x 4 runs of 8 columns = 64 runs, 2 per lane; 4 lanes write one row's 64 bytes.
#pragma unroll
    for (int p = 0; p < 2; ++p) {
      const int run = p * 32 + lane;
      const int row = run / 4;
      const int col = (run % 4) * 8;
      const int m = warp_m * kWM + i * 16 + row;
      const int n = warp_n * kWN + col;
      if (m >= rows_valid || n >= cols_valid) continue;  // cols_valid % 8 == 0: whole runs
      store_run8(c + m * ldc + n, staging + row * kStageLd + col);
    }
    __syncwarp();  // all lanes have read the staging area before the next fragments overwrite it
  }
}

// Row products over the tile map. kWTransposed: W_e is [n, k] (forward); else [k, n] (input grad).
template <bool kWTransposed>
__global__ void __launch_bounds__(kThreads, 2)
    grouped_rows_kernel(const bf16* __restrict__ x, const bf16* __restrict__ w, long weight_stride,
                        bf16* __restrict__ c, const int* __restrict__ offsets, const int* __restrict__ tile_map, int n,
                        int k) {
  __shared__ __align__(128) unsigned char smem[kSmemBytes];
  const int tile = static_cast<int>(blockIdx.x);
  if (tile >= tile_map[0]) return;  // the grid is sized for the worst split of rows over experts
  const int expert = tile_map[1 + 2 * tile];
  const long row0 = tile_map[2 + 2 * tile];
  const int rows_valid = static_cast<int>(min(static_cast<long>(kBM), offsets[expert + 1] - row0));
  const long n0 = static_cast<long>(blockIdx.y) * kBN;
  const int cols_valid = static_cast<int>(min(static_cast<long>(kBN), n - n0));
  const bf16* we = w + expert * weight_stride;
  const Operand a{x + row0 * k, x, k, rows_valid};
  const Operand b = kWTransposed ? Operand{we + n0 * k, w, k, cols_valid} : Operand{we + n0, w, n, cols_valid};
  Acc acc[kFragsM][kFragsN];
  main_loop<true, kWTransposed>(a, b, k, acc, smem);
  store_tile(acc, c + row0 * n + n0, n, rows_valid, cols_valid, smem);
}

// Weight gradient: C_e[m, n] = sum over the expert's rows r of X[r, m] Y[r, n].
__global__ void __launch_bounds__(kThreads, 2)
    grouped_wgrad_kernel(const bf16* __restrict__ x, const bf16* __restrict__ y, bf16* __restrict__ c,
                         const int* __restrict__ offsets, int m, int n) {
  __shared__ __align__(128) unsigned char smem[kSmemBytes];
  const long expert = blockIdx.z;
  const long m0 = static_cast<long>(blockIdx.x) * kBM;
  const long n0 = static_cast<long>(blockIdx.y) * kBN;
  const long r0 = offsets[expert];
  const long rows = max(0L, static_cast<long>(offsets[expert + 1]) - r0);  // the reduction length
  const int rows_valid = static_cast<int>(min(static_cast<long>(kBM), m - m0));
  const int cols_valid = static_cast<int>(min(static_cast<long>(kBN), n - n0));
  const Operand a{x + r0 * m + m0, x, m, rows_valid};
  const Operand b{y + r0 * n + n0, y, n, cols_valid};
  Acc acc[kFragsM][kFragsN];
  main_loop<false, false>(a, b, rows, acc, smem);  // no row: no k-step, zeros are written
  store_tile(acc, c + expert * m * n + m0 * n + n0, n, rows_valid, cols_valid, smem);
}

// Tiles of one expert (0 for an expert without rows, or with offsets out of order).
__device__ __forceinline__ int expert_tiles(const int* offsets, int e) {
  const int count = offsets[e + 1] - offsets[e];
  return count > 0 ? (count + kBM - 1) / kBM : 0;
}

constexpr int kMapThreads = 1024;

// One block: thread t handles a contiguous range of experts; a block-wide scan of their tile counts
// gives each range its first tile.
__global__ void __launch_bounds__(kMapThreads)
    tile_map_kernel(const int* __restrict__ offsets, int experts, int* __restrict__ table, long max_tiles) {
  __shared__ int scan[kMapThreads];
  const int tid = static_cast<int>(threadIdx.x);
  const int per = (experts + kMapThreads - 1) / kMapThreads;
  const int first = min(experts, tid * per);
  const int last = min(experts, first + per);
  int mine = 0;
  for (int e = first; e < last; ++e) mine += expert_tiles(offsets, e);
  scan[tid] = mine;
  __syncthreads();
  for (int step = 1; step < kMapThreads; step *= 2) {  // inclusive Hillis-Steele scan
    const int add = tid >= step ? scan[tid - step] : 0;
    __syncthreads();
    scan[tid] += add;
    __syncthreads();
  }
  long t = scan[tid] - mine;
  for (int e = first; e < last; ++e) {
    const int tiles = expert_tiles(offsets, e);
    for (int i = 0; i < tiles; ++i, ++t) {
      if (t < max_tiles) {
        table[1 + 2 * t] = e;
        table[2 + 2 * t] = offsets[e] + i * kBM;
      }
    }
  }
  if (tid == kMapThreads - 1) table[0] = static_cast<int>(min(static_cast<long>(scan[tid]), max_tiles));
}

}  // namespace

long moe_grouped_max_tiles(long total_rows, int experts) {
  return (std::max(0L, total_rows) + kBM - 1) / kBM + std::max(0, experts);
}

long moe_grouped_tile_map_ints(long max_tiles) { return 1 + 2 * max_tiles; }

cudaError_t moe_grouped_tile_map(const int* offsets, int experts, int* table, long max_tiles, cudaStream_t stream) {
  if (offsets == nullptr || table == nullptr || experts < 1 || max_tiles < 1 || max_tiles > INT_MAX) {
    return cudaErrorInvalidValue;
  }
  tile_map_kernel<<<1, kMapThreads, 0, stream>>>(offsets, experts, table, max_tiles);
  return cudaGetLastError();
}

std::vector<std::pair<int, int>> moe_grouped_tile_map_host(const std::vector<int>& offsets) {
  std::vector<std::pair<int, int>> tiles;
  for (std::size_t e = 0; e + 1 < offsets.size(); ++e) {
    for (int row = offsets[e]; row < offsets[e + 1]; row += kBM) tiles.emplace_back(static_cast<int>(e), row);
  }
  return tiles;
}

std::string moe_grouped_gemm_unsupported_reason(GroupedGemmKind kind, long m_or_k, long n, int experts,
                                                long max_tiles) {
  const bool rows = kind != GroupedGemmKind::wgrad;
  const char* first = rows ? "k" : "m";
  if (experts < 1) return "the grouped GEMM needs at least one expert";
  if (m_or_k < 8 || m_or_k % 8 || n < 8 || n % 8 || m_or_k > INT_MAX || n > INT_MAX) {
    return std::string("grouped GEMM: ") + first + " and n must each be a positive multiple of 8 (16-byte " +
           "loads); " + first + " = " + std::to_string(m_or_k) + ", n = " + std::to_string(n);
  }
  if ((n + kBN - 1) / kBN > 65535) return "n = " + std::to_string(n) + " is too large for the grid";
  if (rows && (max_tiles < 1 || max_tiles > INT_MAX)) {
    return "the grouped GEMM's row tiles (" + std::to_string(max_tiles) + ") do not fit the grid";
  }
  if (!rows && experts > 65535) return "the weight gradient runs at most 65535 experts (grid z)";
  return "";
}

cudaError_t moe_grouped_gemm_rows(GroupedGemmKind kind, const void* x, const void* w, long weight_stride, void* c,
                                  const int* offsets, const int* tile_map, long max_tiles, int n, int k, int experts,
                                  cudaStream_t stream) {
  if (kind == GroupedGemmKind::wgrad || !moe_grouped_gemm_unsupported_reason(kind, k, n, experts, max_tiles).empty())
    return cudaErrorInvalidValue;
  // 16-byte chunks: every row of x, w and c starts aligned once the bases and the expert stride are.
  if (!vec::aligned16(x) || !vec::aligned16(w) || !vec::aligned16(c) || weight_stride % 8 || offsets == nullptr ||
      tile_map == nullptr || x == nullptr || w == nullptr || c == nullptr)
    return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(max_tiles), static_cast<unsigned>((n + kBN - 1) / kBN));
  const auto* xb = static_cast<const bf16*>(x);
  const auto* wb = static_cast<const bf16*>(w);
  auto* cb = static_cast<bf16*>(c);
  if (kind == GroupedGemmKind::rows_x_wt) {
    grouped_rows_kernel<true><<<grid, kThreads, 0, stream>>>(xb, wb, weight_stride, cb, offsets, tile_map, n, k);
  } else {
    grouped_rows_kernel<false><<<grid, kThreads, 0, stream>>>(xb, wb, weight_stride, cb, offsets, tile_map, n, k);
  }
  return cudaGetLastError();
}

cudaError_t moe_grouped_gemm_wgrad(const void* x, const void* y, void* c, const int* offsets, int m, int n, int experts,
                                   cudaStream_t stream) {
  if (!moe_grouped_gemm_unsupported_reason(GroupedGemmKind::wgrad, m, n, experts, 0).empty())
    return cudaErrorInvalidValue;
  if (x == nullptr || y == nullptr || c == nullptr || offsets == nullptr || !vec::aligned16(x) || !vec::aligned16(y) ||
      !vec::aligned16(c))
    return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>((m + kBM - 1) / kBM), static_cast<unsigned>((n + kBN - 1) / kBN),
                  static_cast<unsigned>(experts));
  grouped_wgrad_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const bf16*>(x), static_cast<const bf16*>(y),
                                                      static_cast<bf16*>(c), offsets, m, n);
  return cudaGetLastError();
}

void moe_grouped_gemm_rows_reference(GroupedGemmKind kind, const std::vector<double>& x, const std::vector<double>& w,
                                     const std::vector<int>& offsets, int n, int k, std::vector<double>& c) {
  const std::size_t experts = offsets.size() - 1, nn = static_cast<std::size_t>(n);
  const std::size_t kk = static_cast<std::size_t>(k);
  c.assign(static_cast<std::size_t>(offsets.back()) * nn, 0.0);
  for (std::size_t e = 0; e < experts; ++e) {
    const double* we = w.data() + e * nn * kk;
    for (std::size_t r = static_cast<std::size_t>(offsets[e]); r < static_cast<std::size_t>(offsets[e + 1]); ++r) {
      for (std::size_t j = 0; j < nn; ++j) {
        double sum = 0;
        for (std::size_t q = 0; q < kk; ++q) {
          const double wv = kind == GroupedGemmKind::rows_x_wt ? we[j * kk + q] : we[q * nn + j];
          sum += x[r * kk + q] * wv;
        }
        c[r * nn + j] = sum;
      }
    }
  }
}

void moe_grouped_gemm_wgrad_reference(const std::vector<double>& x, const std::vector<double>& y,
                                      const std::vector<int>& offsets, int m, int n, std::vector<double>& c) {
  const std::size_t experts = offsets.size() - 1, mm = static_cast<std::size_t>(m), nn = static_cast<std::size_t>(n);
  c.assign(experts * mm * nn, 0.0);
  for (std::size_t e = 0; e < experts; ++e) {
    double* ce = c.data() + e * mm * nn;
    for (std::size_t r = static_cast<std::size_t>(offsets[e]); r < static_cast<std::size_t>(offsets[e + 1]); ++r) {
      for (std::size_t i = 0; i < mm; ++i) {
        for (std::size_t j = 0; j < nn; ++j) ce[i * nn + j] += x[r * mm + i] * y[r * nn + j];
      }
    }
  }
}

}  // namespace wflops::kernels
