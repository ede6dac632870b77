// out[i] = a[i] + b[i]: a residual connection as its own pass (out may alias a or b).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "dtype.hpp"

namespace wflops::kernels {

// fp16, bf16 or fp32; fp32 arithmetic; any n.
cudaError_t residual_add(DType dtype, const void* a, const void* b, void* out, std::size_t n, cudaStream_t stream);

}  // namespace wflops::kernels
