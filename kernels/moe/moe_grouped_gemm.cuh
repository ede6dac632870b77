// Our own grouped GEMM for the MoE experts (bf16 in, fp32 accumulate, bf16 out, tensor cores).
// Unlike cuBLAS's grouped GEMM, it takes the experts' row offsets from DEVICE memory, so token-choice
// routing (data-dependent expert sizes) needs no copy of the counts to the host and no sync.
//
// All matrices are row-major. The permuted token rows of all experts form one buffer; expert e owns
// rows offsets[e] .. offsets[e + 1] - 1 of it (offsets: experts + 1 ints on the device, starting at
// 0). Weights are stored expert after expert, `weight_stride` elements apart. Three products:
//   rows_x_wt (forward):       C[r, n] = sum_k X[r, k] W_e[n, k]      X [rows, K], W_e [N, K], C [rows, N]
//   rows_x_w  (input grad):    C[r, n] = sum_k X[r, k] W_e[k, n]      W_e [K, N]
//   wgrad     (weight grad):   C_e[m, n] = sum_{r of e} X[r, m] Y[r, n]    X [rows, M], Y [rows, N],
//                              C_e [M, N]; an expert with no row gets C_e = 0 (written).
// The two row products run over a tile map: each 128-row tile belongs to one expert (an expert's last
// tile is partly empty, the empty rows are masked), built on the device from the offsets by
// moe_grouped_tile_map. The weight gradient runs one grid slice per expert, its reduction length
// read from the offsets.
#pragma once
#include <cuda_runtime.h>

#include <string>
#include <utility>
#include <vector>

namespace wflops::kernels {

enum class GroupedGemmKind { rows_x_wt, rows_x_w, wgrad };

// Rows of one tile of the row products (and the tile map's granularity).
inline constexpr int kGroupedTileRows = 128;

// Tiles the map can hold for `total_rows` rows over `experts` experts, whatever the split:
// sum_e ceil(c_e / 128) <= sum_e (c_e / 128 + 1) <= ceil(total / 128) + experts.
long moe_grouped_max_tiles(long total_rows, int experts);

// Ints of the tile map buffer: 1 (the tile count) + 2 per tile (expert, first row).
long moe_grouped_tile_map_ints(long max_tiles);

// Builds the tile map in `table` (moe_grouped_tile_map_ints(max_tiles) ints) from the device offsets:
// table[0] = tile count, then per tile t: table[1 + 2t] = expert, table[2 + 2t] = its first row.
// Tiles are in expert order, an expert's tiles in row order. One small block; no host round trip.
cudaError_t moe_grouped_tile_map(const int* offsets, int experts, int* table, long max_tiles, cudaStream_t stream);

// The same map computed on the host (for tests): (expert, first row) per tile.
std::vector<std::pair<int, int>> moe_grouped_tile_map_host(const std::vector<int>& offsets);

// "" if the kernels can run these sizes, else why not. n and k (row products) or m and n (wgrad)
// must be positive multiples of 8 (16-byte loads and stores along every contiguous dimension).
std::string moe_grouped_gemm_unsupported_reason(GroupedGemmKind kind, long m_or_k, long n, int experts, long max_tiles);

// Row products: C [rows, n] from X [rows, k] and the experts' weights (rows_x_wt: W_e [n, k];
// rows_x_w: W_e [k, n]), over the tile map. Pointers 16-byte aligned. Returns cudaGetLastError()
// (cudaErrorInvalidValue for unsupported sizes or misaligned pointers).
cudaError_t moe_grouped_gemm_rows(GroupedGemmKind kind, const void* x, const void* w, long weight_stride, void* c,
                                  const int* offsets, const int* tile_map, long max_tiles, int n, int k, int experts,
                                  cudaStream_t stream);

// Weight gradient: C_e [m, n] = X_e^T Y_e for every expert (X [rows, m], Y [rows, n]), C_e at
// c + e * m * n. Pointers 16-byte aligned.
cudaError_t moe_grouped_gemm_wgrad(const void* x, const void* y, void* c, const int* offsets, int m, int n, int experts,
                                   cudaStream_t stream);

// fp64 references on the host, same layouts (used by the GPU tests; checked by hand on the CPU).
// Row products: x [rows, k], w [experts][n, k] or [experts][k, n], c [rows, n].
void moe_grouped_gemm_rows_reference(GroupedGemmKind kind, const std::vector<double>& x, const std::vector<double>& w,
                                     const std::vector<int>& offsets, int n, int k, std::vector<double>& c);
// Weight gradient: x [rows, m], y [rows, n], c [experts][m, n].
void moe_grouped_gemm_wgrad_reference(const std::vector<double>& x, const std::vector<double>& y,
                                      const std::vector<int>& offsets, int m, int n, std::vector<double>& c);

}  // namespace wflops::kernels
