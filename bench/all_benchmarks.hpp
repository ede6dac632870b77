// The benchmarks wflops registers: every family's, in the order they run. Kept out of the
// registry (src/registry.hpp), which describes benchmarks without knowing which there are.
#pragma once
#include "registry.hpp"

namespace wflops {

// Fills a registry with every benchmark family (bench/all_benchmarks.cpp).
void register_all_benchmarks(Registry& registry);

}  // namespace wflops
