#include "flops.hpp"

namespace wflops::flops {

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
