// Rotary position embedding (RoPE; Su et al., arXiv:2104.09864) of head-major query or key heads,
// in the half-split layout of Hugging Face's Llama: element i of a head row pairs with i + hd/2,
//   forward   (x_i, x_{i+hd/2}) <- (x_i cos a - x_{i+hd/2} sin a, x_{i+hd/2} cos a + x_i sin a)
//   backward  the same with -a: a rotation's inverse is its transpose, so the gradient of the
//             rotated head is rotated back
// with a = p · theta^(-2i/hd), p the token's position within its sequence and i < hd/2 (as
// model_ref::rope_rotate, the fp64 reference of the model step).
//
// Layout: [batch, heads, seq, head_dim] row-major (kernels/attention/attention_dims.cuh), so the
// row (b, h, p) has position p = row mod seq. fp16, bf16 or fp32 storage, fp32 arithmetic (the
// angle p · theta^(-2i/hd) in fp32: up to 4096 rad at s = 4096, whose rounding of 2.4e-4 rad is far
// inside the 16-bit dtypes' tolerance). One thread per pair; x may equal y (in place).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "dtype.hpp"

namespace wflops::kernels {

struct RopeDims {
  std::size_t batch = 0, heads = 0, seq = 0, head_dim = 0;  // head_dim even
  std::size_t rows() const { return batch * heads * seq; }
};

// inverse = false: the forward rotation; true: the backward (the rotation by -a).
cudaError_t rope(DType dtype, const void* x, void* y, const RopeDims& dims, double theta, bool inverse,
                 cudaStream_t stream);

// ---- host reference, in double ---------------------------------------------------------------------
void rope_host(const double* x, double* y, const RopeDims& dims, double theta, bool inverse);

}  // namespace wflops::kernels
