#include "model/flops_transformer.hpp"

#include "model/flops.hpp"

namespace wflops::flops {

// One row per token of the vocabulary; an untied model has a second, separate V x H matrix for
// the output projection (logits), a tied one reuses the embedding.
double token_embedding_params(const TransformerShape& m) { return m.vocab * m.hidden * (m.untied ? 2.0 : 1.0); }

// Learned absolute positions: one H-vector per position of the context.
double position_embedding_params(const TransformerShape& m) { return m.seq * m.hidden; }

// Q, K, V and the output projection are each H x H (heads split H, they do not add weights).
double attention_block_weights(double hidden) { return 4.0 * hidden * hidden; }

// H -> 4H -> H: the dense MLP of flops.hpp with d_ff = 4H, 2*H*4H = 8H^2.
double mlp_block_weights(double hidden) { return mlp_weights(hidden, 4.0 * hidden); }

// E*G experts of hidden size 4H/G, each 2*H*(4H/G) weights: E*G * 8H^2/G = 8H^2 * E, independent
// of G (granularity splits experts, it does not add weights).
double moe_block_expert_weights(double hidden, double experts) { return experts * mlp_block_weights(hidden); }

// The router scores each token against every one of the E*G experts: an H x (E*G) matrix.
double moe_router_weights(double hidden, double experts, double granularity) { return hidden * experts * granularity; }

// Pre-norm block: one layer norm before attention, one before the MLP, each with a gain and a
// bias vector of size H. (Q, K and V read the same normalised input, so they share one norm.)
double block_layer_norm_params(double hidden) { return 2.0 * 2.0 * hidden; }
double final_layer_norm_params(double hidden) { return 2.0 * hidden; }

TransformerParams transformer_params(const TransformerShape& m) {
  const double h = m.hidden;
  const double mlp_total = m.moe() ? moe_block_expert_weights(h, m.experts) : mlp_block_weights(h);
  // A token visits G experts of 2*H*(4H/G) weights: 8H^2, the same as one dense MLP.
  const double mlp_active = mlp_block_weights(h);
  const double router = m.moe() ? moe_router_weights(h, m.experts, m.granularity) : 0.0;
  const double shared = attention_block_weights(h) + router + block_layer_norm_params(h);

  TransformerParams p;
  p.embedding = token_embedding_params(m) + position_embedding_params(m);
  p.non_embedding = m.layers * (shared + mlp_total) + final_layer_norm_params(h);
  p.total = p.embedding + p.non_embedding;
  p.active = p.embedding + m.layers * (shared + mlp_active) + final_layer_norm_params(h);
  return p;
}

TransformerFlops transformer_flops_per_token(const TransformerShape& m) {
  const double h = m.hidden;
  TransformerFlops f;
  // Weight FLOPs: every weight matrix a token passes through costs 6 FLOPs per weight in a
  // training step (flops.hpp: linear_training_step). Per block those are the attention
  // projections (4H^2) and one MLP's worth of (active) expert weights (8H^2). Embedding lookups
  // are not matrix products and the unembedding is left out by the C = 6ND convention (N counts
  // non-embedding weights); norms and biases are not weight FLOPs.
  const double weights_per_token = m.layers * (attention_block_weights(h) + mlp_block_weights(h));
  f.weight = linear_training_step(weights_per_token, 1.0);

  // Attention scores Q K^T and outputs P V: a token's query meets S keys (2*S*H FLOPs across all
  // heads) and its S weights mix S values (2*S*H): 2 x 2 x S x H per layer forward, which is
  // attention_forward() of flops.hpp for one sequence with heads*head_dim = H, divided by its S
  // tokens. A step is 3x the forward (forward + 2x for the two backward products), the same
  // factor as the weight FLOPs, without the recomputation that attention_backward()'s 2.5x
  // counts. A causal mask halves it.
  const double forward_per_token = attention_forward(1.0, 1.0, m.seq, h, m.causal) / m.seq;
  f.attention = m.layers * 3.0 * forward_per_token;

  // MoE routing: router projection and token dispatch, d*E*G*c_r per token and block (flops.hpp).
  f.routing = m.moe() ? m.layers * moe_routing_flops(h, m.experts, m.granularity, 1.0) : 0.0;

  f.total = f.weight + f.attention + f.routing;
  return f;
}

}  // namespace wflops::flops
