// Counts NaN/Inf elements of an output. Outputs are poisoned with NaN before a verification run,
// so an element the kernel forgot to write is counted here even where the sampled fp64
// reference comparison does not look.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "dtype.hpp"

namespace wflops::kernels {

// Adds the number of non-finite elements of `data` (fp32, tf32, fp16 or bf16) to *device_count.
cudaError_t count_nonfinite(DType dtype, const void* data, std::size_t count, unsigned long long* device_count,
                            cudaStream_t stream);

}  // namespace wflops::kernels
