#include "model_parts.hpp"

#include <fmt/core.h>

#include "model/model_phases.hpp"
#include "results/breakdown.hpp"

namespace wflops {

void add_model_step_parts(Registry& r, const BenchSpec& step, const std::set<std::string>& suites) {
  const auto shape = model_phases::parse_model_step_shape(step.name);
  if (!shape) return;
  const flops::ModelStepShape& m = *shape;
  const long d = static_cast<long>(m.hidden), heads = static_cast<long>(m.heads);
  const long tokens = static_cast<long>(m.tokens());
  add_model_matmuls(r, m, step.dtype, suites);
  // The attention family runs every query head on its own K and V: the rows of b, h, s and d / h
  // are what breakdown reads the core against, with grouped-query K/V heads or without.
  if (d % heads == 0) {
    add_attention_shape(r, step.dtype, static_cast<long>(m.batch), heads, static_cast<long>(m.seq), d / heads, true,
                        suites);
  }
  // The MLP step breakdown matches (step_alone), named as the model's MLP where the family has no
  // label for it yet (one it has stays as it is).
  const StepAlone alone = step_alone(step.impl, std::string(dtype_name(step.dtype)), m);
  const std::string label =
      r.find(alone.mlp) ? "" : fmt::format("model step MLP d={} d_ff={} T={}", d, static_cast<long>(m.ffn), tokens);
  add_mlp_step_with_baseline(r, alone.mlp_word, step.dtype, d, static_cast<long>(m.ffn), tokens, suites, label);
  add_copy_ceiling(r, suites);
}

}  // namespace wflops
