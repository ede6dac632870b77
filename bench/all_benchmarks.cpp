#include "all_benchmarks.hpp"

#include "bench_families.hpp"
#include "model_parts.hpp"

namespace wflops {

void register_all_benchmarks(Registry& registry) {
  add_matmul_benchmarks(registry);
  add_mlp_benchmarks(registry);
  add_cast_benchmarks(registry);
  add_attention_benchmarks(registry);
  add_moe_benchmarks(registry);
  // The model steps last: each is read against the families above. The model suite also holds
  // what `wflops breakdown` reads each step against (model_parts.hpp), registered before the
  // steps, so that `wflops run --suite model` alone gives every column.
  Registry steps;
  add_model_benchmarks(steps);
  for (const BenchSpec& step : steps.all()) add_model_step_parts(registry, step, {"model"});
  for (const BenchSpec& step : steps.all()) registry.add(step);
}

}  // namespace wflops
