// Mixed precision's per-step conversion: fp32 master weights to bf16/fp16 (and back, for
// gradients or checkpoints), 16-byte vector loads and stores, any n (a scalar tail).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "dtype.hpp"

namespace wflops::kernels {

// in_dtype -> out_dtype, one of fp32 -> bf16/fp16 or bf16/fp16 -> fp32; round to nearest even.
// The vector path needs 16-byte aligned pointers (cudaMalloc's are); others take the scalar path.
cudaError_t cast(DType in_dtype, const void* in, DType out_dtype, void* out, std::size_t n, cudaStream_t stream);

// Host references, written bit by bit (not with the CUDA intrinsics they check): fp32 to bf16 and
// to fp16 bits, round to nearest even, overflow to Inf, fp16 subnormals exact, NaN kept quiet.
std::uint16_t float_to_bf16_bits_host(float x);
std::uint16_t float_to_fp16_bits_host(float x);

}  // namespace wflops::kernels
