// What the CUDA runtime, cuBLAS, cuDNN and NVML say about the GPU a run uses.
#pragma once
#include <string>

#include "device_description.hpp"

namespace wflops {

// "" when a CUDA device can be used; otherwise one line naming the cause, e.g.
// "cudaErrorInsufficientDriver (CUDA driver version is insufficient for CUDA runtime version)".
std::string gpu_unavailable_reason();

// Queries device `index` (throws CudaError when CUDA fails). NVML fields stay 0/"" without NVML.
DeviceDescription query_device(int index);

}  // namespace wflops
