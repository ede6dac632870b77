// wflops params: parameter count and training FLOPs per token of a decoder-only transformer, and with
// --arch the counts of a whole-model step (flops_model.hpp) as the model_step family will report them.
#include <fmt/core.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "json_object.hpp"
#include "model/flops.hpp"
#include "model/flops_model.hpp"
#include "model/flops_transformer.hpp"

namespace wflops::cli {

namespace {

struct ParamsArgs {
  ModelOptions model;
  ArchOptions arch;
  bool json = false;
};

// The --json keys the generic path and --arch share, by one set of names: the parameter counts and
// the training FLOPs per token.
nlohmann::json counts_json(const flops::TransformerParams& p, const flops::TransformerFlops& f) {
  return object_of("params_total", p.total, "params_non_embedding", p.non_embedding, "params_active", p.active,
                   "params_embedding", p.embedding, "flops_per_token", f.total, "flops_per_token_weight", f.weight,
                   "flops_per_token_attention", f.attention, "flops_per_token_routing", f.routing);
}

// --arch: the parameters of the gpt2 or llama model, N_w and the step's FLOPs. The per-token keys have
// the generic path's names, by this family's convention: the weight FLOPs include the LM head (a real
// GEMM of the step) and attention counts forward + 2.5x backward, causal (docs/model.md).
void run_model_params(const ParamsArgs& args) {
  const flops::ModelStepShape m = args.arch.shape(args.model);
  const flops::ModelParams p = flops::model_params(m);
  const bool gpt2 = m.arch == flops::ModelArch::gpt2;
  const double n_w = flops::model_weights(m);
  const double tokens = m.tokens();
  const double weight = flops::model_step_weight_flops(m);
  const double attention = flops::model_step_attention_flops(m);
  const double model = flops::model_step_model_flops(m);
  if (args.json) {
    // A model step is dense: every parameter is active and no FLOPs route.
    nlohmann::json out = counts_json({p.total, p.non_embedding, p.total, p.embedding},
                                     {weight / tokens, attention / tokens, 0.0, model / tokens});
    add_fields(out, "arch", gpt2 ? "gpt2" : "llama", "hidden", m.hidden, "layers", m.layers, "heads", m.heads,
               "kv_heads", m.kv_heads, "ffn", m.ffn, "vocab", m.vocab, "seq", m.seq, "batch", m.batch, "tokens", tokens,
               "untied", m.untied, "weights_per_token", n_w, "step_flops_weight", weight, "step_flops_attention",
               attention, "step_flops_model", model);
    fmt::print("{}\n", out.dump(2));
    return;
  }
  if (gpt2) {
    fmt::print("GPT-2 model step: d = {}, L = {}, h = {}, V = {}, s = {}, b = {} ({} tokens), {} head\n", m.hidden,
               m.layers, m.heads, m.vocab, m.seq, m.batch, tokens, m.untied ? "untied" : "tied");
  } else {
    fmt::print("Llama model step: d = {}, L = {}, h = {}, kvh = {}, d_ff = {}, V = {}, s = {}, b = {} ({} tokens)\n",
               m.hidden, m.layers, m.heads, m.kv_heads, m.ffn, m.vocab, m.seq, m.batch, tokens);
  }
  auto row = [](const std::string& what, double v) {
    fmt::print("  {:<44} {:>22}  {:>8}\n", what, with_commas(v), short_count(v));
  };
  const double d = m.hidden;
  fmt::print("\nParameters\n");
  row("token embeddings (V x d)", p.token_embedding);
  if (gpt2) row("position embeddings (s x d)", p.position_embedding);
  if (gpt2) {
    row("attention per block (4d^2)", flops::attention_block_weights(d));
    row("MLP per block (2 d d_ff = 8d^2)", flops::mlp_weights(d, m.ffn));
    row("biases per block (QKV 3d, out d, MLP d_ff + d)", p.block_biases);
    row("layer norms per block (4d)", p.block_norms);
    row("final layer norm (2d)", p.final_norm);
  } else {
    row("attention per block (2d^2 + 2d^2 kvh/h)", flops::gqa_attention_weights(d, m.heads, m.kv_heads));
    row("SwiGLU MLP per block (3 d d_ff)", flops::swiglu_weights(d, m.ffn));
    row("RMSNorm gains per block (2d)", p.block_norms);
    row("final RMSNorm (d)", p.final_norm);
  }
  if (m.untied) row("LM head (untied, V x d)", p.head);
  row("total", p.total);
  row("non-embedding", p.non_embedding);
  fmt::print("\nWeights a token multiplies (N_w; biases, norms and embeddings are not)\n");
  row(fmt::format("blocks ({} x {})", m.layers, with_commas(flops::model_block_weights(m))),
      m.layers * flops::model_block_weights(m));
  row(m.untied ? "LM head (V x d)" : "LM head (V x d, tied: counted once)", flops::model_head_weights(m));
  row("N_w", n_w);
  fmt::print("\nTraining FLOPs per token (forward + backward)\n");
  row("weight (6 x N_w)", weight / tokens);
  row("attention (causal, forward + 2.5x backward)", attention / tokens);
  row("model (weight + attention, for MFU)", model / tokens);
  fmt::print("\nOne step of b x s = {} tokens\n", with_commas(tokens));
  row("weight FLOPs (the numerator of tau)", weight);
  row("attention FLOPs", attention);
  row("model FLOPs", model);
}

void run_params(const ParamsArgs& args) {
  if (args.arch.used()) {
    run_model_params(args);
    return;
  }
  const flops::TransformerShape m = args.model.shape();
  const flops::TransformerParams p = flops::transformer_params(m);
  const flops::TransformerFlops f = flops::transformer_flops_per_token(m);
  if (args.json) {
    fmt::print("{}\n", counts_json(p, f).dump(2));
    return;
  }
  const double h = m.hidden;
  fmt::print("Decoder-only transformer: H = {}, L = {}, V = {}, S = {}, {}, {} embeddings{}\n", m.hidden, m.layers,
             m.vocab, m.seq,
             m.moe() ? fmt::format("MoE E = {}, G = {} ({} experts of hidden {})", m.experts, m.granularity,
                                   m.experts * m.granularity, 4.0 * h / m.granularity)
                     : std::string("dense"),
             m.untied ? "untied" : "tied", m.causal ? ", causal" : "");
  fmt::print("\nParameters\n");
  auto row = [](const char* what, double v) {
    fmt::print("  {:<34} {:>22}  {:>8}\n", what, with_commas(v), short_count(v));
  };
  row("token embeddings", flops::token_embedding_params(m));
  row("position embeddings", flops::position_embedding_params(m));
  row("attention per block (4H^2)", flops::attention_block_weights(h));
  if (m.moe()) {
    row("experts per block (8H^2 x E)", flops::moe_block_expert_weights(h, m.experts));
    row("router per block (H x E x G)", flops::moe_router_weights(h, m.experts, m.granularity));
  } else {
    row("MLP per block (8H^2)", flops::mlp_block_weights(h));
  }
  row("layer norms per block (4H)", flops::block_layer_norm_params(h));
  row("final layer norm (2H)", flops::final_layer_norm_params(h));
  row("total", p.total);
  row("non-embedding", p.non_embedding);
  row("active per token", p.active);
  fmt::print("\nTraining FLOPs per token (forward + backward)\n");
  row("weights (6 x 12H^2 x L)", f.weight);
  row(m.causal ? "attention scores+outputs (causal)" : "attention scores+outputs", f.attention);
  if (m.moe()) row("routing (H x E x G x 14 x L)", f.routing);
  row("total", f.total);
  fmt::print("\nA training run over D tokens costs D x {:.4g} FLOPs.\n", f.total);
}

}  // namespace

void add_params_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ParamsArgs>();
  auto* cmd =
      app.add_subcommand("params", "parameter count and training FLOPs per token of a decoder-only transformer");
  // --hidden, --layers, --vocab and --seq are required unless --arch fills them (ModelOptions::shape
  // says which is missing).
  args->model.add_to(cmd);
  args->arch.add_to(cmd);
  cmd->add_flag("--json", args->json,
                "print JSON (params_total, params_non_embedding, params_active, flops_per_token)");
  cmd->callback([args, &exit_code] {
    run_params(*args);
    exit_code = 0;
  });
}

}  // namespace wflops::cli
