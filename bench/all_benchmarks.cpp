#include "bench_families.hpp"

namespace wflops {

void register_all_benchmarks(Registry& registry) { add_matmul_benchmarks(registry); }

}  // namespace wflops
