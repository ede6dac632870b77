#include "all_benchmarks.hpp"

#include "bench_families.hpp"

namespace wflops {

void register_all_benchmarks(Registry& registry) {
  add_matmul_benchmarks(registry);
  add_mlp_benchmarks(registry);
  add_cast_benchmarks(registry);
  add_attention_benchmarks(registry);
  add_moe_benchmarks(registry);
  add_model_benchmarks(registry);  // last: read against the families above
}

}  // namespace wflops
