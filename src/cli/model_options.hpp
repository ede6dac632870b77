// Shared by `wflops params`, `budget` and `plan`: the transformer-shape options and number
// formatting. Header-only, included by the cmd_*.cpp files of issue 6.
#pragma once
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <string>

#include "budget.hpp"
#include "errors.hpp"
#include "flops_transformer.hpp"

namespace wflops::cli {

// The options that describe a decoder-only transformer; `given()` tells whether any was used.
struct ModelOptions {
  double hidden = 0, layers = 0, vocab = 0, seq = 0, experts = 0, granularity = 1;
  bool untied = false, causal = false;
  CLI::Option* hidden_opt = nullptr;
  CLI::Option* layers_opt = nullptr;
  CLI::Option* vocab_opt = nullptr;
  CLI::Option* seq_opt = nullptr;
  CLI::Option* experts_opt = nullptr;
  CLI::Option* granularity_opt = nullptr;

  void add_to(CLI::App* cmd) {
    hidden_opt = cmd->add_option("--hidden", hidden, "model width H (d_model)");
    layers_opt = cmd->add_option("--layers", layers, "number of transformer blocks L");
    vocab_opt = cmd->add_option("--vocab", vocab, "vocabulary size V");
    seq_opt = cmd->add_option("--seq", seq, "sequence (context) length S");
    experts_opt = cmd->add_option("--experts", experts, "MoE expansion rate E (every MLP becomes E*G experts)");
    granularity_opt = cmd->add_option("--granularity", granularity, "MoE granularity G (experts of hidden 4H/G)");
    cmd->add_flag("--untied", untied, "separate unembedding matrix (a second V x H)");
    cmd->add_flag("--causal", causal, "causal attention: half of the attention scores");
  }

  bool given() const {
    return hidden_opt->count() || layers_opt->count() || vocab_opt->count() || seq_opt->count() ||
           experts_opt->count() || granularity_opt->count();
  }

  // The shape, after checking that every size is given and sensible; UserError otherwise.
  flops::TransformerShape shape() const {
    const std::pair<CLI::Option*, const char*> required[] = {
        {hidden_opt, "--hidden"}, {layers_opt, "--layers"}, {vocab_opt, "--vocab"}, {seq_opt, "--seq"}};
    for (const auto& [opt, name] : required) {
      if (!opt->count()) throw UserError(fmt::format("a model needs {} (and --hidden, --layers, --vocab, --seq)", name));
    }
    budget::require_count(hidden, "--hidden", budget::kMaxHidden);
    budget::require_count(layers, "--layers", budget::kMaxLayers);
    budget::require_count(vocab, "--vocab", budget::kMaxVocab);
    budget::require_count(seq, "--seq", budget::kMaxSeq);
    if (granularity_opt->count() && !experts_opt->count()) {
      throw UserError("--granularity applies to MoE models: give --experts too");
    }
    if (experts_opt->count()) {
      budget::require_count(experts, "--experts", budget::kMaxExperts);
      budget::require_count(granularity, "--granularity", budget::kMaxExperts);
      // Experts of hidden size 4H/G must have at least one unit.
      if (granularity > 4.0 * hidden) {
        throw UserError(fmt::format("--granularity {} leaves experts of hidden size 4H/G < 1 (H = {})", granularity, hidden));
      }
    }
    flops::TransformerShape m;
    m.hidden = hidden;
    m.layers = layers;
    m.vocab = vocab;
    m.seq = seq;
    m.experts = experts_opt->count() ? experts : 0.0;
    m.granularity = experts_opt->count() ? granularity : 1.0;
    m.untied = untied;
    m.causal = causal;
    return m;
  }
};

// "124,439,808" for counts people read digit by digit.
inline std::string with_commas(double v) {
  if (!std::isfinite(v) || std::abs(v) >= 1e18) return fmt::format("{:.3e}", v);
  const std::string digits = fmt::format("{:.0f}", std::abs(v));
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (v < 0 ? "-" : "") + out;
}

// "124.4M", "7.38e22"-style short forms: K, M, B (1e9), T (1e12), then scientific.
inline std::string short_count(double v) {
  const double a = std::abs(v);
  if (a >= 1e15) return fmt::format("{:.3g}", v);
  if (a >= 1e12) return fmt::format("{:.3g}T", v / 1e12);
  if (a >= 1e9) return fmt::format("{:.3g}B", v / 1e9);
  if (a >= 1e6) return fmt::format("{:.3g}M", v / 1e6);
  if (a >= 1e3) return fmt::format("{:.3g}K", v / 1e3);
  return fmt::format("{:.3g}", v);
}

}  // namespace wflops::cli
