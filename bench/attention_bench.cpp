// PLACEHOLDER: replaced by the attention family's registrations.
#include "bench_families.hpp"

namespace wflops {
void add_attention_benchmarks(Registry&) {}
}  // namespace wflops
