// GELU (tanh approximation, as moe_reference.cpp and cuBLASLt's epilogue) between the two expert
// GEMMs, forward and backward, bf16 storage and fp32 arithmetic.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>

namespace wflops::kernels {

// out[i] = gelu(h[i]).
cudaError_t moe_gelu_forward(const __nv_bfloat16* h, __nv_bfloat16* out, std::size_t n, cudaStream_t stream);
// dh[i] = da[i] * gelu'(h[i]) (dh may alias da).
cudaError_t moe_gelu_backward(const __nv_bfloat16* da, const __nv_bfloat16* h, __nv_bfloat16* dh, std::size_t n,
                              cudaStream_t stream);

}  // namespace wflops::kernels
