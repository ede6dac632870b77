// The configuration of one moe_step benchmark, for the family (moe_bench.cpp) and for tests that
// build configurations the same way.
#pragma once
#include "cuda/moe_layer.hpp"

namespace wflops {

// d, E (experts), G (granularity), T (tokens), routing and expert GEMMs, as the names spell them.
MoeConfig moe_config(long d, long experts, long granularity, long tokens, moe::Routing routing, MoeGemmImpl impl);

}  // namespace wflops
