// GPT-2's input layer: a token embedding gathered by id plus a learned position embedding,
//   forward   out[t, :] = wte[tokens[t], :] + wpe[t mod S, :]     (T = B * S tokens, rows of d)
//   backward  dwte[v, :] += Σ_{t : tokens[t] = v} dout[t, :],   dwpe[p, :] += Σ_b dout[b S + p, :]
// wte [V, d], wpe [S, d], out and dout [T, d] are fp16, bf16 or fp32 (the weights' compute
// copies); the weight gradients are fp32 and are added to (the LM head tied to wte adds its own
// gradient to the same dwte, so the caller zeroes it once per step).
//
// The backward is deterministic without atomics: the token ids are sorted with their positions
// (CUB's stable radix sort), so each id's occurrences form one run in position order; one block
// per run adds its rows in that order and adds the sum into dwte. dwpe is one thread per (p,
// column vector) adding over the B sequences in order. wpe may be nullptr (no learned positions:
// the forward adds nothing, and dwpe is then not touched).
//
// Launch shapes: the forward is a grid-stride loop over 16-byte vectors of out (single elements
// when d is not a multiple of 8 fp16/bf16 or 4 fp32 elements, or a pointer is unaligned); the
// dwte pass is one block (up to 256 threads over the columns) per sorted token, of which only the
// first of each run works; the dwpe pass is a grid-stride loop over S x d.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "dtype.hpp"

namespace wflops::kernels {

// tokens: T ids in [0, vocab); an id outside it (a caller's bug the host cannot see) gets the
// position row alone forward and adds to no row of dwte backward. T must be a multiple of seq.
cudaError_t embedding_forward(DType dtype, const int* tokens, const void* wte, const void* wpe, void* out,
                              std::size_t n_tokens, std::size_t seq, std::size_t vocab, std::size_t d,
                              cudaStream_t stream);

// Scratch the backward needs (the ids and positions before and after the sort, and CUB's storage).
cudaError_t embedding_backward_workspace_bytes(std::size_t n_tokens, std::size_t vocab, std::size_t* bytes);

// dwte: [vocab, d] fp32, added to; dwpe: [seq, d] fp32, added to (nullptr: skipped). workspace:
// at least embedding_backward_workspace_bytes, 256-byte aligned (cudaMalloc's are).
cudaError_t embedding_backward(DType dtype, const int* tokens, const void* dout, float* dwte, float* dwpe,
                               std::size_t n_tokens, std::size_t seq, std::size_t vocab, std::size_t d, void* workspace,
                               std::size_t workspace_bytes, cudaStream_t stream);

// ---- host references, in double, on row-major arrays ---------------------------------------------
// wpe may be nullptr. out: n_tokens * d. Ids outside [0, vocab) as the kernels treat them.
void embedding_forward_host(const int* tokens, const double* wte, const double* wpe, std::size_t n_tokens,
                            std::size_t seq, std::size_t vocab, std::size_t d, double* out);
// Adds into dwte [vocab * d] and dwpe [seq * d] (nullptr: skipped).
void embedding_backward_host(const int* tokens, const double* dout, std::size_t n_tokens, std::size_t seq,
                             std::size_t vocab, std::size_t d, double* dwte, double* dwpe);

}  // namespace wflops::kernels
