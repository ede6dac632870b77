// Mixed precision's per-step conversion: fp32 master weights to bf16/fp16 (and back, for
// gradients or checkpoints), 16-byte vector loads and stores, any n (a scalar tail).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "dtype.hpp"

namespace wflops::kernels {

// in_dtype -> out_dtype, one of fp32 -> bf16/fp16 or bf16/fp16 -> fp32; round to nearest even.
// The vector path needs 16-byte aligned pointers (cudaMalloc's are); others take the scalar path.
cudaError_t cast(DType in_dtype, const void* in, DType out_dtype, void* out, std::size_t n, cudaStream_t stream);

}  // namespace wflops::kernels
