#include "model/model_phases.hpp"

#include <fmt/core.h>

#include <cmath>
#include <string_view>

#include "results/result_reader.hpp"

namespace wflops::model_phases {

std::string phase_name(Direction direction, const char* component) {
  return std::string(direction == Direction::fwd ? "fwd_" : "bwd_") + component;
}

const std::vector<Phase>& phases() {
  static const std::vector<Phase> all = [] {
    std::vector<Phase> out;
    for (const Component& c : kComponents) {
      out.push_back({phase_name(Direction::fwd, c.name), c.name, Direction::fwd, c.kind});
    }
    for (auto it = std::rbegin(kComponents); it != std::rend(kComponents); ++it) {
      out.push_back({phase_name(Direction::bwd, it->name), it->name, Direction::bwd, it->kind});
    }
    out.push_back({kOptimizer, kOptimizer, Direction::bwd, Kind::memory});
    return out;
  }();
  return all;
}

const Phase* find_phase(const std::string& name) {
  for (const Phase& p : phases()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const char* fused_into(const std::string& phase, flops::ModelArch arch) {
  if (phase == "fwd_residual") return "fwd_norm";
  if (phase == "bwd_residual") return "bwd_norm";
  if (arch != flops::ModelArch::gpt2) return nullptr;
  if (phase == "fwd_activation") return "fwd_mlp_up";
  if (phase == "bwd_activation") return "bwd_mlp_down";
  return nullptr;
}

std::string model_step_name(const std::string& impl, const std::string& dtype, const flops::ModelStepShape& m) {
  const std::string head = fmt::format("{}/{}/{}", kFamily, impl, dtype);
  if (m.arch == flops::ModelArch::gpt2) {
    return fmt::format("{}/arch:gpt2/d:{}/L:{}/h:{}/s:{}/b:{}/V:{}", head, m.hidden, m.layers, m.heads, m.seq, m.batch,
                       m.vocab);
  }
  return fmt::format("{}/arch:llama/d:{}/L:{}/h:{}/kvh:{}/ff:{}/s:{}/b:{}/V:{}", head, m.hidden, m.layers, m.heads,
                     m.kv_heads, m.ffn, m.seq, m.batch, m.vocab);
}

std::optional<flops::ModelStepShape> parse_model_step_shape(const std::string& name) {
  const BenchmarkName n = parse_benchmark_name(name);
  if (n.family != kFamily) return std::nullopt;
  const auto count = [&](const char* key) -> std::optional<double> {
    const auto v = n.number(key);
    if (!v || !std::isfinite(*v) || *v < 1 || *v != std::floor(*v)) return std::nullopt;
    return v;
  };
  flops::ModelStepShape m;
  const auto arch = n.param("arch");
  if (arch == std::string_view("gpt2")) {
    m.arch = flops::ModelArch::gpt2;
  } else if (arch == std::string_view("llama")) {
    m.arch = flops::ModelArch::llama;
    m.untied = true;
  } else {
    return std::nullopt;
  }
  const auto d = count("d"), layers = count("L"), heads = count("h"), seq = count("s"), batch = count("b"),
             vocab = count("V");
  if (!d || !layers || !heads || !seq || !batch || !vocab) return std::nullopt;
  m.hidden = *d;
  m.layers = *layers;
  m.heads = *heads;
  m.seq = *seq;
  m.batch = *batch;
  m.vocab = *vocab;
  if (m.arch == flops::ModelArch::gpt2) {
    // A GPT-2 name implies kvh = h and d_ff = 4d (docs/model.md, "Names").
    m.kv_heads = m.heads;
    m.ffn = 4 * m.hidden;
  } else {
    const auto kvh = count("kvh"), ff = count("ff");
    if (!kvh || !ff) return std::nullopt;
    m.kv_heads = *kvh;
    m.ffn = *ff;
  }
  return m;
}

}  // namespace wflops::model_phases
