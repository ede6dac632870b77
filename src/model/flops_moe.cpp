#include <fmt/core.h>

#include "model/flops.hpp"

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

double moe_expert_count(double experts, double granularity) { return experts * granularity; }

std::string moe_config_error(long d, long experts, long granularity) {
  if (d < 8) return fmt::format("d = {} is too small (at least 8)", d);
  if (experts < 1) return fmt::format("E = {} must be at least 1", experts);
  if (granularity < 1) return fmt::format("G = {} must be at least 1", granularity);
  if ((4 * d) % granularity != 0) {
    return fmt::format("d_expert = 4d/G = {}/{} is not a whole number", 4 * d, granularity);
  }
  const long hidden = 4 * d / granularity;
  if (hidden % 8 != 0) {
    return fmt::format("d_expert = 4d/G = {} is not a whole multiple of 8 (d = {}, G = {})", hidden, d, granularity);
  }
  return "";
}

std::string moe_expert_choice_error(long experts, long tokens) {
  if (kMoeExpertChoiceGroup % experts != 0) {
    return fmt::format("expert choice needs E to divide {} (E = {})", kMoeExpertChoiceGroup, experts);
  }
  if (tokens < kMoeExpertChoiceGroup || tokens % kMoeExpertChoiceGroup != 0) {
    return fmt::format("expert choice needs the token count to be a multiple of {} (T = {})", kMoeExpertChoiceGroup,
                       tokens);
  }
  return "";
}

double moe_expert_choice_capacity(double experts, double tokens) { return tokens / experts; }
double moe_assignments(double granularity, double tokens) { return granularity * tokens; }

double moe_router_forward_flops(double d, double experts, double granularity, double tokens) {
  return gemm(tokens, moe_expert_count(experts, granularity), d);
}

double moe_permute_bytes(double d, double granularity, double tokens, double elem_bytes) {
  return 2.0 * moe_assignments(granularity, tokens) * d * elem_bytes;
}
double moe_combine_bytes(double d, double granularity, double tokens, double elem_bytes) {
  return (moe_assignments(granularity, tokens) + tokens) * d * elem_bytes;
}

double moe_combine_backward_bytes(double d, double granularity, double tokens, double elem_bytes) {
  return (2.0 * moe_assignments(granularity, tokens) + tokens) * d * elem_bytes;
}

double moe_step_bytes(double d, double experts, double granularity, double tokens, double elem_bytes) {
  const double inputs = 2.0 * tokens * d + moe_expert_count(experts, granularity) * d + 8.0 * d * d * experts;
  return 2.0 * inputs * elem_bytes;
}

}  // namespace wflops::flops
