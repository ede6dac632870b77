// The per-expert GEMMs of an MoE layer (expert e multiplies its own rows of the permuted buffer by
// its own weights), run three ways:
//   grouped: one cublasGemmGroupedBatchedEx call; experts with the same token count form one group
//            (problem sizes on the host, as cuBLAS takes them; pointer arrays in device memory,
//            uploaded once per input set for expert choice and built by a kernel from the device
//            counts each step for token choice, so only the counts come to the host);
//   loop:    one cublasGemmEx per expert;
//   padded:  one cublasGemmStridedBatchedEx at the expert capacity (every expert the same number
//            of rows, stored `capacity` rows apart); used with expert choice, whose capacity T/E is
//            exact, so no padding rows are computed;
//   ours:    our own grouped GEMM kernels (kernels/moe/moe_grouped_gemm.cu), which read the experts' row
//            offsets from device memory: no size ever goes through the host, so token choice runs
//            without a sync (the tile map is rebuilt on the device from the offsets each step).
// Sizes are in cuBLAS's column-major terms (see moe_layer.cpp for how each GEMM is laid out).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <vector>

#include "cuda/device_buffer.hpp"

namespace wflops {

enum class MoeGemmImpl { grouped, loop, padded, ours };

// One operand: weights (expert e's matrix at base + e * expert_elems) or token rows (expert e's
// rows start at its row offset, row_elems elements per row). bf16 elements.
struct ExpertOperand {
  const void* base = nullptr;
  std::size_t expert_elems = 0;
  std::size_t row_elems = 0;
  bool rows = false;
};

// A size that is the expert's token count rather than a fixed number.
inline constexpr int kExpertTokens = -1;

// C_e = op(A_e) op(B_e) + beta C_e for every expert e, C_e m x n, op(A_e) m x k (column-major).
struct ExpertGemm {
  cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
  int m = 0, n = 0, k = 0;  // or kExpertTokens
  ExpertOperand a, b, c;
  int lda = 0, ldb = 0, ldc = 0;
};

// The experts with at least one token in the order the grouped call lists them: by token count,
// then by expert index (groups are runs of equal count; kernels::moe_grouped_pointers uses it too).
std::vector<int> grouped_expert_order(const std::vector<int>& counts);

class ExpertGemmRunner {
 public:
  ExpertGemmRunner(MoeGemmImpl impl, int experts, int slots, int gemms_per_slot);
  // The per-expert token counts and row offsets (host) the next prepare()/run() calls use.
  void set_routing(const std::vector<int>& counts, const std::vector<int>& offsets);
  // Builds the grouped call's host-side sizes of `gemms` for `slot` and uploads its pointer arrays
  // (a synchronous copy from the host: call it outside timed launches). Expert choice.
  void prepare(int slot, const std::vector<ExpertGemm>& gemms, cudaStream_t stream);
  // grouped, token choice, before the counts come to the host: enqueues the kernel that builds the
  // pointer arrays of `gemms` into `slot` from the experts' token counts in device memory (nothing
  // is copied from the host). A no-op for the other implementations.
  void build_device_pointers(int slot, const std::vector<ExpertGemm>& gemms, const int* device_counts,
                             cudaStream_t stream);
  // grouped, token choice, once set_routing has the counts: the grouped call's host-side sizes of
  // `gemms` for `slot` (host work only). A no-op for the other implementations.
  void prepare_sizes(int slot, const std::vector<ExpertGemm>& gemms);
  // ours: the experts' row offsets (experts + 1 ints, device memory, filled before build_tile_map)
  // and the total row count; allocates the tile map. Call outside timed launches.
  void set_device_offsets(const int* offsets, long total_rows);
  // ours: rebuilds the tile map from the device offsets (one small kernel, nothing comes back to the
  // host). Call after the offsets change and before run(); a no-op for the other implementations.
  void build_tile_map(cudaStream_t stream);
  // Enqueues gemm `index` of `slot` (as prepared, for grouped). `handle` must come bound to `stream`
  // and the shared workspace (cublas_on(stream)); run() does not rebind it.
  void run(int slot, int index, const ExpertGemm& g, cublasHandle_t handle, cudaStream_t stream);

 private:
  struct Grouped {  // the host-side arrays of one grouped call
    std::vector<cublasOperation_t> ta, tb;
    std::vector<int> m, n, k, lda, ldb, ldc, group_size;
    std::vector<float> alpha, beta;
    std::vector<int> empty_experts;  // experts with no token whose C must be zeroed (k = count)
  };
  void check_slot(int slot, const std::vector<ExpertGemm>& gemms) const;
  const void* pointer(const ExpertOperand& o, int e) const;
  int size(int s, int e) const { return s == kExpertTokens ? counts_[e] : s; }
  void zero_c(const ExpertGemm& g, int e, cudaStream_t stream) const;
  void run_ours(const ExpertGemm& g, cudaStream_t stream) const;

  MoeGemmImpl impl_;
  int experts_, slots_, per_slot_;
  std::vector<int> counts_, offsets_;
  std::vector<Grouped> grouped_;         // [slot * per_slot + index]
  DeviceBuffer pointers_;                // [slot][index][A, B, C][experts]
  const int* device_offsets_ = nullptr;  // ours: [experts + 1] on the device
  long max_tiles_ = 0;                   // ours: the grid's row tiles (worst split of the rows)
  DeviceBuffer tile_map_;                // ours: see kernels::moe_grouped_tile_map
};

}  // namespace wflops
