// The cast benchmarks' workloads: a mixed-precision cast of n elements (fp32 <-> bf16/fp16, our
// 16-byte vector kernel, kernels/elementwise/cast.cu), and a device-to-device copy of n fp32 elements
// (cudaMemcpyAsync), the bandwidth a cast is read against.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <memory>

#include "cuda/harness.hpp"
#include "dtype.hpp"

namespace wflops {

// One of fp32 -> bf16/fp16 or bf16/fp16 -> fp32; anything else throws std::invalid_argument.
std::unique_ptr<Workload> make_cast_workload(DType in, DType out, std::size_t n);
std::unique_ptr<Workload> make_copy_workload(std::size_t n);  // n fp32 elements

// Checks every one of the n outputs on the host: `out` must hold, bit for bit, the exact
// conversion of `in` (round to nearest even when narrowing; exact when widening; a plain copy when
// the types are equal). rel_err is ||out - ref|| / ||ref|| over all n (0 when bit-exact).
Verification verify_cast(DType in_dtype, const void* in, DType out_dtype, const void* out, std::size_t n);

}  // namespace wflops
