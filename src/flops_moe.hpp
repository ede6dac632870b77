// The FLOP model: Mixture-of-Experts layers.
// Part of the module flops.hpp (same conventions, namespace wflops::flops).
#pragma once

namespace wflops::flops {

// ---- Mixture of Experts (scaling-law model; E = expansion rate, G = granularity) -------------
// A fine-grained MoE block replaces the MLP (d_ff = 4d) with E*G experts of hidden size
// d_expert = 4d/G; each token visits G experts, so its active expert weights are
// G * 2 * d * (4d/G) = 8*d^2 whatever G is.
inline constexpr double kMoeCf = 6.0;   // FLOPs per active weight per token in a step
inline constexpr double kMoeCr = 14.0;  // routing FLOPs per router weight per token in a step:
                                        // 6 for the router projection (fwd+bwd) and 8 for moving
                                        // tokens to experts and back, weighted, fwd and bwd.
double moe_expert_hidden(double d, double granularity);            // 4d / G
double moe_active_expert_weights(double d);                        // 8 d^2
double moe_expert_weight_flops(double d, double tokens);           // 6 * 8 d^2 * T
double moe_routing_flops(double d, double experts, double granularity, double tokens);  // d*E*G*14*T
// A whole block's training step per token: 12*d^2*c_f (attention projections 4d^2 plus the
// active expert weights 8d^2, times c_f) + d*E*G*c_r.
double moe_block_step_per_token(double d, double experts, double granularity);

}  // namespace wflops::flops
