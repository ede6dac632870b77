// The cast family: mixed precision's per-step conversions (fp32 master weights to bf16/fp16 and
// back) and a device-to-device copy of the same size, the bandwidth they are read against.
// Registered by the MLP family (bench/mlp_bench.cpp).
#pragma once
#include "registry.hpp"

namespace wflops {

// cast/d2d_copy/fp32/n:<n>, then cast/vec16/<in>_<out>/n:<n> with the copy as baseline, for
// n = 2^24, 2^26, 2^28. Memory-bound: flops = 0, bytes from the FLOP model.
void add_cast_benchmarks(Registry& r);

}  // namespace wflops
