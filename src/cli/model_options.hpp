// Shared by `wflops params`, `budget` and `plan`: the transformer-shape options and number
// formatting; and, for `params` only, the --arch presets of the model_step family. Header-only.
#pragma once
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <initializer_list>
#include <string>
#include <utility>

#include "errors.hpp"
#include "model/budget.hpp"
#include "model/flops_model.hpp"
#include "model/flops_transformer.hpp"

namespace wflops::cli {

// Whether the command line gave an option, asked by its name ("--hidden") of the command it was
// added to (CLI::App::count): the options' names serve both to ask and in the error messages, and a
// command keeps no pointer per option.
struct CommandLine {
  const CLI::App* cmd = nullptr;
  bool gave(const std::string& option) const { return cmd->count(option) > 0; }
};

// The options that describe a decoder-only transformer; `given()` tells whether any was used.
struct ModelOptions {
  double hidden = 0, layers = 0, vocab = 0, seq = 0, experts = 0, granularity = 1;
  bool untied = false, causal = false;
  CommandLine line;

  void add_to(CLI::App* cmd) {
    line.cmd = cmd;
    cmd->add_option("--hidden", hidden, "model width H (d_model)");
    cmd->add_option("--layers", layers, "number of transformer blocks L");
    cmd->add_option("--vocab", vocab, "vocabulary size V");
    cmd->add_option("--seq", seq, "sequence (context) length S");
    cmd->add_option("--experts", experts, "MoE expansion rate E (every MLP becomes E*G experts)");
    cmd->add_option("--granularity", granularity, "MoE granularity G (experts of hidden 4H/G)");
    cmd->add_flag("--untied", untied, "separate unembedding matrix (a second V x H)");
    cmd->add_flag("--causal", causal, "causal attention: half of the attention scores");
  }

  bool given() const {
    for (const char* o : {"--hidden", "--layers", "--vocab", "--seq", "--experts", "--granularity"}) {
      if (line.gave(o)) return true;
    }
    return false;
  }

  // The shape, after checking that every size is given and sensible; UserError otherwise.
  flops::TransformerShape shape() const {
    for (const char* name : {"--hidden", "--layers", "--vocab", "--seq"}) {
      if (!line.gave(name))
        throw UserError(fmt::format("a model needs {} (and --hidden, --layers, --vocab, --seq)", name));
    }
    budget::require_count(hidden, "--hidden", budget::kMaxHidden);
    budget::require_count(layers, "--layers", budget::kMaxLayers);
    budget::require_count(vocab, "--vocab", budget::kMaxVocab);
    budget::require_count(seq, "--seq", budget::kMaxSeq);
    if (line.gave("--granularity") && !line.gave("--experts")) {
      throw UserError("--granularity applies to MoE models: give --experts too");
    }
    if (line.gave("--experts")) {
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
    m.experts = line.gave("--experts") ? experts : 0.0;
    m.granularity = line.gave("--experts") ? granularity : 1.0;
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
  CommandLine line;

  void add_to(CLI::App* cmd) {
    line.cmd = cmd;
    cmd->add_option("--arch", arch,
                    "a model_step preset: gpt2 (d 1600, L 8, h 25, V 50257, 32 x 256 tokens) or llama "
                    "(Llama-3-8B's block: d 4096, L 2, h 32, kvh 8, d_ff 14336, V 128256, 1 x 4096); "
                    "the shape options override it");
    cmd->add_option("--heads", heads, "query heads h (with --arch)");
    cmd->add_option("--kv-heads", kv_heads, "K/V heads of grouped-query attention (--arch llama)");
    cmd->add_option("--ffn", ffn, "MLP hidden size d_ff (--arch llama; GPT-2's is 4d)");
    cmd->add_option("--batch", batch, "sequences per step b (with --arch)");
  }

  // Whether any of these options was used (then the command describes a model step).
  bool used() const { return line.gave("--arch") || given_arch_only() != nullptr; }

  // The step's shape, after checking every size; UserError otherwise. `model` holds the shared shape
  // options; the MoE options do not apply to either architecture.
  flops::ModelStepShape shape(const ModelOptions& model) const {
    if (!line.gave("--arch")) {
      if (const char* name = given_arch_only()) {
        throw UserError(fmt::format("{} describes a model step: give --arch gpt2 or --arch llama", name));
      }
      throw UserError("a model step needs --arch gpt2 or --arch llama");
    }
    if (model.line.gave("--experts") || model.line.gave("--granularity")) {
      throw UserError("--experts and --granularity do not apply to --arch presets (gpt2 and llama are dense)");
    }
    flops::ModelStepShape m;
    if (arch == "gpt2") {
      m = flops::gpt2_reference_shape();
      if (line.gave("--kv-heads")) {
        throw UserError("--kv-heads applies to --arch llama (GPT-2 has one K/V head per query head)");
      }
      if (line.gave("--ffn")) {
        throw UserError("--ffn applies to --arch llama (GPT-2's MLP hidden size is 4 x --hidden)");
      }
    } else if (arch == "llama") {
      m = flops::llama3_8b_block_shape();
    } else {
      throw UserError(fmt::format("--arch must be gpt2 or llama (got '{}')", arch));
    }
    // The option's value where the command line gave it, else the preset's; checked either way.
    auto take = [](const CommandLine& from, const char* name, double value, double& field, double max) {
      if (from.gave(name)) field = value;
      budget::require_count(field, name, max);
    };
    take(model.line, "--hidden", model.hidden, m.hidden, budget::kMaxHidden);
    take(model.line, "--layers", model.layers, m.layers, budget::kMaxLayers);
    take(model.line, "--vocab", model.vocab, m.vocab, budget::kMaxVocab);
    take(model.line, "--seq", model.seq, m.seq, budget::kMaxSeq);
    take(line, "--batch", batch, m.batch, budget::kMaxSeq);
    take(line, "--heads", heads, m.heads, budget::kMaxHidden);
    if (std::fmod(m.hidden, m.heads) != 0) {
      throw UserError(
          fmt::format("--hidden {} does not split into {} heads: give --heads, a divisor of it", m.hidden, m.heads));
    }
    if (m.arch == flops::ModelArch::gpt2) {
      m.kv_heads = m.heads;
      m.ffn = 4.0 * m.hidden;
      m.untied = model.untied;
    } else {
      take(line, "--kv-heads", kv_heads, m.kv_heads, budget::kMaxHidden);
      take(line, "--ffn", ffn, m.ffn, 4.0 * budget::kMaxHidden);
      if (std::fmod(m.heads, m.kv_heads) != 0) {
        throw UserError(fmt::format("--kv-heads {} must divide the {} query heads (each K/V head serves a group)",
                                    m.kv_heads, m.heads));
      }
      m.untied = true;  // Llama 3's head is its own matrix
    }
    return m;
  }

 private:
  // The first option given that only a model step takes (nullptr: none).
  const char* given_arch_only() const {
    for (const char* name : {"--heads", "--kv-heads", "--ffn", "--batch"}) {
      if (line.gave(name)) return name;
    }
    return nullptr;
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
