// out[r, c] = in[r, c] + bias[c] for a row-major [rows, cols] matrix (in may equal out): the bias
// of nn.Linear added as its own pass, as an eager framework without a fused epilogue does.
#pragma once
#include <cuda_runtime.h>

#include "dtype.hpp"

namespace wflops::kernels {

// dtype: fp16, bf16 or fp32 (in, bias and out alike); fp32 arithmetic. Any cols (vector
// accesses where alignment allows, a scalar tail otherwise).
cudaError_t bias_add(DType dtype, const void* in, const void* bias, void* out, long rows, long cols,
                     cudaStream_t stream);

}  // namespace wflops::kernels
