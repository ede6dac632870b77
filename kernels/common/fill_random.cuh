// Fresh random inputs for verification and timing: uniform in [-1, 1), never all zeros, from a
// counter-based hash of (seed, index) so any seed gives new data without host work.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "dtype.hpp"

namespace wflops::kernels {

// Supports fp32, tf32, fp16, bf16 and fp8 (e4m3). tf32 data is stored as fp32 with the low 13
// mantissa bits cleared, so every value is exact in tf32 and the fp64 reference sees the same
// numbers the tensor cores multiply.
cudaError_t fill_random(DType dtype, void* data, std::size_t count, std::uint64_t seed, cudaStream_t stream);

}  // namespace wflops::kernels
