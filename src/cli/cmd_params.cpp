// wflops params: parameter count and training FLOPs per token of a decoder-only transformer.
#include <fmt/core.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "flops_transformer.hpp"

namespace wflops::cli {

namespace {

struct ParamsArgs {
  ModelOptions model;
  bool json = false;
};

void run_params(const ParamsArgs& args) {
  const flops::TransformerShape m = args.model.shape();
  const flops::TransformerParams p = flops::transformer_params(m);
  const flops::TransformerFlops f = flops::transformer_flops_per_token(m);
  if (args.json) {
    nlohmann::json out;
    out["params_total"] = p.total;
    out["params_non_embedding"] = p.non_embedding;
    out["params_active"] = p.active;
    out["params_embedding"] = p.embedding;
    out["flops_per_token"] = f.total;
    out["flops_per_token_weight"] = f.weight;
    out["flops_per_token_attention"] = f.attention;
    out["flops_per_token_routing"] = f.routing;
    fmt::print("{}\n", out.dump(2));
    return;
  }
  const double h = m.hidden;
  fmt::print("Decoder-only transformer: H = {}, L = {}, V = {}, S = {}, {}, {} embeddings{}\n", m.hidden, m.layers,
             m.vocab, m.seq, m.moe() ? fmt::format("MoE E = {}, G = {} ({} experts of hidden {})", m.experts,
                                                   m.granularity, m.experts * m.granularity, 4.0 * h / m.granularity)
                                     : std::string("dense"),
             m.untied ? "untied" : "tied", m.causal ? ", causal" : "");
  fmt::print("\nParameters\n");
  auto row = [](const char* what, double v) { fmt::print("  {:<34} {:>22}  {:>8}\n", what, with_commas(v), short_count(v)); };
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
  auto* cmd = app.add_subcommand("params", "parameter count and training FLOPs per token of a decoder-only transformer");
  args->model.add_to(cmd);
  args->model.hidden_opt->required();
  args->model.layers_opt->required();
  args->model.vocab_opt->required();
  args->model.seq_opt->required();
  cmd->add_flag("--json", args->json, "print JSON (params_total, params_non_embedding, params_active, flops_per_token)");
  cmd->callback([args, &exit_code] {
    run_params(*args);
    exit_code = 0;
  });
}

}  // namespace wflops::cli
