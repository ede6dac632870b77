// The bias gradient of nn.Linear: db[c] = sum over rows r of d[r, c] for a row-major [rows, cols]
// gradient, accumulated in fp32 (the unfused counterpart of cuBLASLt's BGRAD epilogues).
#pragma once
#include <cuda_runtime.h>

#include "dtype.hpp"

namespace wflops::kernels {

// d: fp16, bf16 or fp32; db: `db_dtype` (fp32 or the same as d). Deterministic (no atomics
// whose order could change the sum between runs).
cudaError_t bias_grad(DType dtype, const void* d, DType db_dtype, void* db, long rows, long cols, cudaStream_t stream);

}  // namespace wflops::kernels
