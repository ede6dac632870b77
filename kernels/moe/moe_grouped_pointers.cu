// One thread per expert. Each thread walks every expert's count once (through shared-memory tiles)
// to get its own row offset (the counts before it) and its position in the (count, index) order;
// O(experts²) comparisons in all, a few microseconds for the 4096 experts of the largest shapes,
// against the host round trip it replaces.
#include "moe/moe_grouped_pointers.cuh"

namespace wflops::kernels {

namespace {

constexpr int kThreads = 256;

__global__ void grouped_pointers_kernel(const int* counts, int experts, GroupedPointerSpec spec, void** out) {
  __shared__ int tile[kThreads];
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  const int mine = e < experts ? counts[e] : 0;
  unsigned long long offset = 0;
  int position = 0;
  for (int base = 0; base < experts; base += kThreads) {
    const int j = base + static_cast<int>(threadIdx.x);
    tile[threadIdx.x] = j < experts ? counts[j] : 0;
    __syncthreads();
    const int n = experts - base < kThreads ? experts - base : kThreads;
    for (int i = 0; i < n; ++i) {
      const int c = tile[i], other = base + i;
      if (other < e) offset += static_cast<unsigned long long>(c);
      if (c > 0 && (c < mine || (c == mine && other < e))) ++position;
    }
    __syncthreads();  // the tile is read by every thread before the next one overwrites it
  }
  if (e >= experts || mine == 0) return;
  for (int j = 0; j < spec.operands; ++j) {
    const GroupedPointerOperand& o = spec.operand[j];
    const std::size_t bytes = o.rows ? offset * o.row_bytes : static_cast<std::size_t>(e) * o.expert_bytes;
    out[static_cast<std::size_t>(j) * experts + position] = const_cast<char*>(o.base) + bytes;
  }
}

}  // namespace

cudaError_t moe_grouped_pointers(const int* counts, int experts, const GroupedPointerSpec& spec, void** out,
                                 cudaStream_t stream) {
  if (experts <= 0 || counts == nullptr || out == nullptr || spec.operands < 0 ||
      spec.operands > kMaxGroupedPointerOperands) {
    return cudaErrorInvalidValue;
  }
  const int blocks = (experts + kThreads - 1) / kThreads;
  grouped_pointers_kernel<<<blocks, kThreads, 0, stream>>>(counts, experts, spec, out);
  return cudaGetLastError();
}

std::vector<int> moe_grouped_positions_host(const std::vector<int>& counts) {
  const int n = static_cast<int>(counts.size());
  std::vector<int> position(counts.size(), -1);
  for (int e = 0; e < n; ++e) {
    if (counts[e] <= 0) continue;
    int p = 0;
    for (int other = 0; other < n; ++other) {
      const int c = counts[other];
      if (c > 0 && (c < counts[e] || (c == counts[e] && other < e))) ++p;
    }
    position[e] = p;
  }
  return position;
}

}  // namespace wflops::kernels
