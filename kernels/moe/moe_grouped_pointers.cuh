// The pointer arrays of cuBLAS's grouped GEMM (cublasGemmGroupedBatchedEx) for the MoE experts,
// built on the device from the experts' token counts. The call takes its problem sizes and group
// sizes as host arrays but its A, B, C pointer arrays in device memory (cuBLAS docs,
// cublasGemmGroupedBatchedEx), so with data-dependent counts only the sizes need the host: this
// kernel fills the pointers without a host-to-device copy.
//
// Order: the experts with at least one token, by (count, expert index) ascending, the order in
// which the host groups experts of equal count (src/cuda/moe_expert_gemm.cpp,
// grouped_expert_order). Experts with no token get no entry.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <vector>

namespace wflops::kernels {

// One operand of one GEMM: expert e's matrix starts at base + e * expert_bytes (weights), or at
// base + offset_e * row_bytes (token rows, offset_e = the rows of the experts before e).
struct GroupedPointerOperand {
  const char* base = nullptr;
  std::size_t expert_bytes = 0;
  std::size_t row_bytes = 0;
  int rows = 0;  // 1: token rows, 0: weights
};

// The six expert GEMMs of an MoE step, three operands each.
inline constexpr int kMaxGroupedPointerOperands = 18;

struct GroupedPointerSpec {
  GroupedPointerOperand operand[kMaxGroupedPointerOperands];
  int operands = 0;
};

// out[j * experts + p] = operand j's matrix of the expert at position p of the order above, for
// every operand j < spec.operands; the entries past the last expert with a token are left as they
// are. counts: `experts` ints in device memory (this step's histogram). Enqueued on `stream`.
cudaError_t moe_grouped_pointers(const int* counts, int experts, const GroupedPointerSpec& spec, void** out,
                                 cudaStream_t stream);

// The host twin of the kernel's order: position[e] of each expert (-1 for an expert with no token).
std::vector<int> moe_grouped_positions_host(const std::vector<int>& counts);

}  // namespace wflops::kernels
