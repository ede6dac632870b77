// One function per benchmark family; register_all_benchmarks() calls them all.
#pragma once
#include "registry.hpp"

namespace wflops {
void add_matmul_benchmarks(Registry& r);  // matmul_bench.cpp
}  // namespace wflops
