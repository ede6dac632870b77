// PLACEHOLDER: replaced by the moe family's registrations.
#include "bench_families.hpp"

namespace wflops {
void add_moe_benchmarks(Registry&) {}
}  // namespace wflops
