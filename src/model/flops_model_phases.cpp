#include "model/flops_model_phases.hpp"

#include "model/flops.hpp"

namespace wflops::flops {

std::vector<ModelGemm> model_gemms(const ModelStepShape& m) {
  const double d = m.hidden;
  const double L = m.layers;
  if (m.arch == ModelArch::gpt2) {
    return {{"qkv", 3.0 * d, d, L},
            {"out_proj", d, d, L},
            {"mlp_up", m.ffn, d, L},
            {"mlp_down", d, m.ffn, L},
            {"lm_head", m.vocab, d, 1.0}};
  }
  const double kv_width = m.kv_heads * (d / m.heads);
  return {{"qkv", d + 2.0 * kv_width, d, L},
          {"out_proj", d, d, L},
          {"mlp_up", 2.0 * m.ffn, d, L},
          {"mlp_down", d, m.ffn, L},
          {"lm_head", m.vocab, d, 1.0}};
}

double model_phase_weight_flops(const ModelStepShape& m, const std::string& component, bool backward) {
  for (const ModelGemm& g : model_gemms(m)) {
    if (g.component != component) continue;
    const double weights = g.out * g.in;
    return g.per_step * (backward ? linear_backward(weights, m.tokens()) : linear_forward(weights, m.tokens()));
  }
  return 0.0;
}

double model_phase_attention_flops(const ModelStepShape& m, bool backward) {
  const double head_dim = m.hidden / m.heads;
  const double per_layer = backward ? attention_backward(m.batch, m.heads, m.seq, head_dim, true)
                                    : attention_forward(m.batch, m.heads, m.seq, head_dim, true);
  return m.layers * per_layer;
}

}  // namespace wflops::flops
