#include "flops.hpp"

namespace wflops::flops {

double gemm(double m, double n, double k) { return 2.0 * m * n * k; }

double gemm_bytes(double m, double n, double k, double a_elem_bytes, double b_elem_bytes,
                  double c_elem_bytes) {
  return m * k * a_elem_bytes + k * n * b_elem_bytes + m * n * c_elem_bytes;
}

double linear_forward(double weights, double tokens) { return 2.0 * weights * tokens; }
double linear_backward(double weights, double tokens) { return 4.0 * weights * tokens; }
double linear_training_step(double weights, double tokens) {
  return linear_forward(weights, tokens) + linear_backward(weights, tokens);
}

double training_run(double params, double tokens) { return linear_training_step(params, tokens); }

double mlp_weights(double d, double d_ff) { return 2.0 * d * d_ff; }
double mlp_forward(double d, double d_ff, double tokens) {
  return linear_forward(mlp_weights(d, d_ff), tokens);
}
double mlp_training_step(double d, double d_ff, double tokens) {
  return linear_training_step(mlp_weights(d, d_ff), tokens);
}

double attention_forward(double batch, double heads, double seq, double head_dim, bool causal) {
  const double full = 2.0 * gemm(seq, seq, head_dim) * batch * heads;  // QK^T and PV
  return causal ? full / 2.0 : full;
}
double attention_backward(double batch, double heads, double seq, double head_dim, bool causal) {
  return 2.5 * attention_forward(batch, heads, seq, head_dim, causal);
}

double moe_expert_hidden(double d, double granularity) { return 4.0 * d / granularity; }
double moe_active_expert_weights(double d) { return 8.0 * d * d; }
double moe_expert_weight_flops(double d, double tokens) {
  return linear_training_step(moe_active_expert_weights(d), tokens);
}
double moe_routing_flops(double d, double experts, double granularity, double tokens) {
  return d * experts * granularity * kMoeCr * tokens;
}
double moe_block_step_per_token(double d, double experts, double granularity) {
  return 12.0 * d * d * kMoeCf + d * experts * granularity * kMoeCr;
}

}  // namespace wflops::flops
