// The permutation of token-to-expert assignments: counting (histogram), offsets (a scan) and a
// stable sort by key (CUB radix sort), the pieces that turn routing decisions into an
// expert-contiguous order and back into a per-token list.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace wflops::kernels {

// counts[b] = number of i < n with ids[i] == b, for b < bins (counts is zeroed first).
cudaError_t moe_histogram(const int* ids, int n, int bins, int* counts, cudaStream_t stream);

// offsets[0] = 0, offsets[i + 1] = counts[0] + ... + counts[i] (n + 1 values). With temp == nullptr
// only sets *temp_bytes (the scratch it needs), as CUB does.
cudaError_t moe_offsets(void* temp, std::size_t* temp_bytes, const int* counts, int* offsets, int n,
                        cudaStream_t stream);

// Stable sort of (key, value) pairs by the low `key_bits` bits of the key; same temp protocol.
cudaError_t moe_sort_pairs(void* temp, std::size_t* temp_bytes, const int* keys_in, int* keys_out, const int* values_in,
                           int* values_out, int n, int key_bits, cudaStream_t stream);

// values[i] = i.
cudaError_t moe_iota(int* values, int n, cudaStream_t stream);

// After sorting the token-choice assignments (assignment a = token * k + j) by expert:
// row_token[r] = sorted_assignment[r] / k, row_score[r] = assign_score[sorted_assignment[r]].
cudaError_t moe_rows_from_assignments(const int* sorted_assignment, const float* assign_score, int rows, int k,
                                      int* row_token, float* row_score, cudaStream_t stream);

// Bits needed to sort keys in [0, count): the least b with 2^b >= count (at least 1).
int moe_key_bits(int count);

}  // namespace wflops::kernels
