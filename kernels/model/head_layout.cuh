// Between the token-major activations of a transformer block and the head-major layout of the
// attention kernels (kernels/attention/attention_dims.cuh):
//   token-major  [T, n·h·hd] row-major, token t = b·S + p, column j·h·hd + head·hd + c
//                (the QKV projection's output with n = 3: q, then k, then v; n = 1 for O or dO)
//   head-major   n arrays one after another, array j [B, h, S, hd]: element (b, head, p, c)
// split_heads goes from the first to the second (the forward's q, k, v; the backward's dO),
// merge_heads back (the forward's O before the output projection; the backward's dq, dk, dv into
// the QKV projection's gradient). A pure copy, 16 bytes a thread when hd · element bytes is a
// multiple of 16 and both pointers are 16-byte aligned, one element a thread otherwise.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "dtype.hpp"

namespace wflops::kernels {

struct HeadLayout {
  std::size_t batch = 0, seq = 0, heads = 0, head_dim = 0;
  std::size_t n = 1;  // tensors side by side in the token-major row (3 for q, k, v)
  std::size_t elements() const { return n * batch * seq * heads * head_dim; }
};

// dtype: fp16, bf16 or fp32 (only the element size matters). src and dst may not overlap.
cudaError_t split_heads(DType dtype, const void* token_major, void* head_major, const HeadLayout& l,
                        cudaStream_t stream);
cudaError_t merge_heads(DType dtype, const void* head_major, void* token_major, const HeadLayout& l,
                        cudaStream_t stream);

// The index of token-major element i (row-major [T, n·h·hd]) in the head-major arrays: the map both
// kernels and the host references use.
std::size_t head_major_index(const HeadLayout& l, std::size_t token_major);

// Host references, on doubles.
void split_heads_host(const double* token_major, double* head_major, const HeadLayout& l);
void merge_heads_host(const double* head_major, double* token_major, const HeadLayout& l);

}  // namespace wflops::kernels
