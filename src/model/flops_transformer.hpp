// Parameter counts and per-token training FLOPs of a whole decoder-only transformer (dense or
// fine-grained MoE), part of the FLOP model (namespace wflops::flops, see flops.hpp). `wflops
// params`, `wflops budget` and the planner use these; each formula is written here once.
//
// The model: token embeddings V x H (tied with the unembedding unless untied), learned position
// embeddings S x H, L blocks of pre-norm attention + MLP (d_ff = 4H), a final layer norm.
// An MoE block replaces the MLP by E*G experts of hidden size 4H/G of which each token visits G,
// plus a router H -> E*G (granularity G, expansion rate E, as in flops.hpp).
#pragma once

namespace wflops::flops {

struct TransformerShape {
  double hidden = 0;       // H (d_model)
  double layers = 0;       // L (blocks)
  double vocab = 0;        // V
  double seq = 0;          // S (context length; sets the position embeddings and attention cost)
  double experts = 0;      // E, expansion rate; 0 = dense MLP blocks
  double granularity = 1;  // G (MoE only)
  bool untied = false;     // separate unembedding matrix (a second V x H)
  bool causal = false;     // causal mask: half of the attention scores are computed
  bool moe() const { return experts > 0; }
};

// ---- parameters -----------------------------------------------------------------------------
double token_embedding_params(const TransformerShape& m);                      // V*H, twice when untied
double position_embedding_params(const TransformerShape& m);                   // S*H
double attention_block_weights(double hidden);                                 // 4H^2 (Q, K, V, O)
double mlp_block_weights(double hidden);                                       // 8H^2 (d_ff = 4H)
double moe_block_expert_weights(double hidden, double experts);                // 8H^2 * E
double moe_router_weights(double hidden, double experts, double granularity);  // H*E*G
double block_layer_norm_params(double hidden);                                 // 4H: two layer norms (gain + bias each)
double final_layer_norm_params(double hidden);                                 // 2H

struct TransformerParams {
  double total = 0;          // every parameter
  double non_embedding = 0;  // total minus token and position embeddings
  double active = 0;         // used by one token (MoE: G of the E*G experts per block)
  double embedding = 0;      // token + position embeddings
};
TransformerParams transformer_params(const TransformerShape& m);

// ---- FLOPs per token of a training step ---------------------------------------------------------
struct TransformerFlops {
  double weight = 0;     // 6 x non-embedding weights that a token passes through
  double attention = 0;  // attention scores and outputs, forward + backward
  double routing = 0;    // MoE router and dispatch (0 for dense)
  double total = 0;      // the sum: flops_per_token
};
TransformerFlops transformer_flops_per_token(const TransformerShape& m);

}  // namespace wflops::flops
