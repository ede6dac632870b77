#include <algorithm>

#include "model/flops.hpp"

namespace wflops::flops {

double attention_forward(double batch, double heads, double seq, double head_dim, bool causal) {
  const double full = 2.0 * gemm(seq, seq, head_dim) * batch * heads;  // QK^T and PV
  return causal ? full / 2.0 : full;
}
double attention_backward(double batch, double heads, double seq, double head_dim, bool causal) {
  return 2.5 * attention_forward(batch, heads, seq, head_dim, causal);
}

double attention_unfused_forward_matmul(double batch, double heads, double seq, double head_dim) {
  return attention_forward(batch, heads, seq, head_dim, false);
}
double attention_unfused_backward_matmul(double batch, double heads, double seq, double head_dim) {
  return 4.0 * gemm(seq, seq, head_dim) * batch * heads;  // dV, dP, dQ, dK
}

double attention_tiled_scores(double seq, long block_q, long block_k, bool causal) {
  if (!causal) return seq * seq;
  const long s = static_cast<long>(seq);
  double scores = 0;
  for (long r0 = 0; r0 < s; r0 += block_q) {
    const long r1 = std::min(r0 + block_q, s) - 1;  // last row of this query tile
    const long key_tiles = (r1 + 1 + block_k - 1) / block_k;
    const long keys = std::min(s, key_tiles * block_k);
    scores += static_cast<double>(r1 - r0 + 1) * static_cast<double>(keys);
  }
  return scores;
}

double attention_fused_forward_matmul(double batch, double heads, double seq, double head_dim, bool causal,
                                      long block_q, long block_k) {
  return 4.0 * head_dim * attention_tiled_scores(seq, block_q, block_k, causal) * batch * heads;
}
double attention_fused_backward_matmul(double batch, double heads, double seq, double head_dim, bool causal,
                                       long block_q, long block_k) {
  return 10.0 * head_dim * attention_tiled_scores(seq, block_q, block_k, causal) * batch * heads;
}

double attention_score_bytes(double batch, double heads, double seq, double elem_bytes) {
  return batch * heads * seq * seq * elem_bytes;
}

double attention_forward_bytes(double batch, double heads, double seq, double head_dim, double elem_bytes) {
  const double tensor = batch * heads * seq * head_dim * elem_bytes;
  return 4.0 * tensor + batch * heads * seq * 4.0;  // Q, K, V, O + fp32 L
}
double attention_backward_bytes(double batch, double heads, double seq, double head_dim, double elem_bytes) {
  const double tensor = batch * heads * seq * head_dim * elem_bytes;
  return 8.0 * tensor + batch * heads * seq * 4.0;  // Q, K, V, O, dO, dQ, dK, dV + fp32 L
}

double layer_weight_step_flops(double hidden, double tokens) {
  return linear_training_step(12.0 * hidden * hidden, tokens);
}
double layer_attention_step_flops(double hidden, double seq, double tokens, bool causal) {
  // T/s sequences, "heads x head_dim" = hidden: the forward is 4 * (T/s) * s^2 * H.
  const double forward = attention_forward(tokens / seq, 1.0, seq, hidden, causal);
  return forward + 2.5 * forward;
}
double attention_flop_share(double hidden, double seq, bool causal) {
  const double attn = layer_attention_step_flops(hidden, seq, seq, causal);
  return attn / (attn + layer_weight_step_flops(hidden, seq));
}
double attention_time_share(double hidden, double seq, bool causal, double tau_weight, double tau_fwd, double tau_bwd) {
  const double forward = attention_forward(1.0, 1.0, seq, hidden, causal);  // one sequence of s tokens
  const double t_attn = forward / tau_fwd + 2.5 * forward / tau_bwd;
  const double t_weight = layer_weight_step_flops(hidden, seq) / tau_weight;
  return t_attn / (t_attn + t_weight);
}

}  // namespace wflops::flops
