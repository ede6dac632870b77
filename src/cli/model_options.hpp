// Shared by `wflops params`, `budget` and `plan`: the transformer-shape options and number
// formatting; and, for `params` only, the --arch presets of the model_step family. Header-only.
#pragma once
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <string>
#include <utility>

#include "errors.hpp"
#include "model/budget.hpp"
#include "model/flops_model.hpp"
#include "model/flops_transformer.hpp"

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
      if (!opt->count())
        throw UserError(fmt::format("a model needs {} (and --hidden, --layers, --vocab, --seq)", name));
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
        throw UserError(
            fmt::format("--granularity {} leaves experts of hidden size 4H/G < 1 (H = {})", granularity, hidden));
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

// `--arch gpt2|llama`: the shape of a whole-model step (flops_model.hpp), filled from the family's
// benchmark configuration (the GPT-2 reference d 1600/L 8/h 25/V 50257/32 x 256, or Llama-3-8B's
// block d 4096/L 2/h 32/kvh 8/d_ff 14336/V 128256/1 x 4096) wherever the user does not give the
// size: --hidden, --layers, --vocab and --seq of ModelOptions, and the options added here.
struct ArchOptions {
  std::string arch;
  double heads = 0, kv_heads = 0, ffn = 0, batch = 0;
  CLI::Option* arch_opt = nullptr;
  CLI::Option* heads_opt = nullptr;
  CLI::Option* kv_heads_opt = nullptr;
  CLI::Option* ffn_opt = nullptr;
  CLI::Option* batch_opt = nullptr;

  void add_to(CLI::App* cmd) {
    arch_opt = cmd->add_option("--arch", arch,
                               "a model_step preset: gpt2 (d 1600, L 8, h 25, V 50257, 32 x 256 tokens) or llama "
                               "(Llama-3-8B's block: d 4096, L 2, h 32, kvh 8, d_ff 14336, V 128256, 1 x 4096); "
                               "the shape options override it");
    heads_opt = cmd->add_option("--heads", heads, "query heads h (with --arch)");
    kv_heads_opt = cmd->add_option("--kv-heads", kv_heads, "K/V heads of grouped-query attention (--arch llama)");
    ffn_opt = cmd->add_option("--ffn", ffn, "MLP hidden size d_ff (--arch llama; GPT-2's is 4d)");
    batch_opt = cmd->add_option("--batch", batch, "sequences per step b (with --arch)");
  }

  // Whether any of these options was used (then the command describes a model step).
  bool used() const {
    return arch_opt->count() || heads_opt->count() || kv_heads_opt->count() || ffn_opt->count() || batch_opt->count();
  }

  // The step's shape, after checking every size; UserError otherwise. `model` holds the shared shape
  // options; the MoE options do not apply to either architecture.
  flops::ModelStepShape shape(const ModelOptions& model) const {
    const std::pair<CLI::Option*, const char*> arch_only[] = {
        {heads_opt, "--heads"}, {kv_heads_opt, "--kv-heads"}, {ffn_opt, "--ffn"}, {batch_opt, "--batch"}};
    if (!arch_opt->count()) {
      for (const auto& [opt, name] : arch_only) {
        if (opt->count()) {
          throw UserError(fmt::format("{} describes a model step: give --arch gpt2 or --arch llama", name));
        }
      }
      throw UserError("a model step needs --arch gpt2 or --arch llama");
    }
    if (model.experts_opt->count() || model.granularity_opt->count()) {
      throw UserError("--experts and --granularity do not apply to --arch presets (gpt2 and llama are dense)");
    }
    flops::ModelStepShape m;
    if (arch == "gpt2") {
      m = flops::gpt2_reference_shape();
      if (kv_heads_opt->count()) {
        throw UserError("--kv-heads applies to --arch llama (GPT-2 has one K/V head per query head)");
      }
      if (ffn_opt->count()) throw UserError("--ffn applies to --arch llama (GPT-2's MLP hidden size is 4 x --hidden)");
    } else if (arch == "llama") {
      m = flops::llama3_8b_block_shape();
    } else {
      throw UserError(fmt::format("--arch must be gpt2 or llama (got '{}')", arch));
    }
    auto take = [](const CLI::Option* opt, double value, double& field, const char* name, double max) {
      if (opt->count()) field = value;
      budget::require_count(field, name, max);
    };
    take(model.hidden_opt, model.hidden, m.hidden, "--hidden", budget::kMaxHidden);
    take(model.layers_opt, model.layers, m.layers, "--layers", budget::kMaxLayers);
    take(model.vocab_opt, model.vocab, m.vocab, "--vocab", budget::kMaxVocab);
    take(model.seq_opt, model.seq, m.seq, "--seq", budget::kMaxSeq);
    take(batch_opt, batch, m.batch, "--batch", budget::kMaxSeq);
    take(heads_opt, heads, m.heads, "--heads", budget::kMaxHidden);
    if (std::fmod(m.hidden, m.heads) != 0) {
      throw UserError(
          fmt::format("--hidden {} does not split into {} heads: give --heads, a divisor of it", m.hidden, m.heads));
    }
    if (m.arch == flops::ModelArch::gpt2) {
      m.kv_heads = m.heads;
      m.ffn = 4.0 * m.hidden;
      m.untied = model.untied;
    } else {
      take(kv_heads_opt, kv_heads, m.kv_heads, "--kv-heads", budget::kMaxHidden);
      take(ffn_opt, ffn, m.ffn, "--ffn", 4.0 * budget::kMaxHidden);
      if (std::fmod(m.heads, m.kv_heads) != 0) {
        throw UserError(fmt::format("--kv-heads {} must divide the {} query heads (each K/V head serves a group)",
                                    m.kv_heads, m.heads));
      }
      m.untied = true;  // Llama 3's head is its own matrix
    }
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
