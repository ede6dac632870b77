// The FLOP model: Mixture-of-Experts layers.
// Part of the module flops.hpp (same conventions, namespace wflops::flops).
#pragma once
#include <string>

namespace wflops::flops {

// ---- Mixture of Experts (scaling-law model; E = expansion rate, G = granularity) -------------
// A fine-grained MoE block replaces the MLP (d_ff = 4d) with E*G experts of hidden size
// d_expert = 4d/G; each token visits G experts, so its active expert weights are
// G * 2 * d * (4d/G) = 8*d^2 whatever G is.
inline constexpr double kMoeCf = 6.0;                     // FLOPs per active weight per token in a step
inline constexpr double kMoeCr = 14.0;                    // routing FLOPs per router weight per token in a step:
                                                          // 6 for the router projection (fwd+bwd) and 8 for moving
                                                          // tokens to experts and back, weighted, fwd and bwd.
double moe_expert_hidden(double d, double granularity);   // 4d / G
double moe_active_expert_weights(double d);               // 8 d^2
double moe_expert_weight_flops(double d, double tokens);  // 6 * 8 d^2 * T
double moe_routing_flops(double d, double experts, double granularity, double tokens);  // d*E*G*14*T
// A whole block's training step per token: 12*d^2*c_f (attention projections 4d^2 plus the
// active expert weights 8d^2, times c_f) + d*E*G*c_r.
double moe_block_step_per_token(double d, double experts, double granularity);

// ---- What the moe_step benchmark needs -------------------------------------------------------
// Number of experts N = E*G (E the expansion rate, G the granularity).
double moe_expert_count(double experts, double granularity);
// "" when (d, E, G) makes a layer the benchmark can run: d >= 8, E >= 1, G >= 1, and
// d_expert = 4d/G a whole multiple of 8 (16-byte rows of bf16 for the GEMMs and the vector copies);
// otherwise a sentence saying what is wrong.
std::string moe_config_error(long d, long experts, long granularity);
// Expert choice: every group of 256 tokens offers each of the N = E*G experts its top
// 256*G/(E*G) = 256/E tokens (so the group's 256 tokens fill 256*G slots: G per token on average,
// as with token choice top-G). Over T tokens (T/256 groups) an expert takes T/256 * 256/E = T/E
// tokens. "" or why not: T must be a multiple of 256 and 256 a multiple of E.
inline constexpr long kMoeExpertChoiceGroup = 256;
std::string moe_expert_choice_error(long experts, long tokens);
double moe_expert_choice_capacity(double experts, double tokens);  // T/E tokens per expert
// Token-to-expert assignments in one step: T*G under both routings (top-G per token, or
// N experts x T/E tokens = E*G*T/E).
double moe_assignments(double granularity, double tokens);
// Router projection forward: logits[T, N] = x[T, d] W_r^T, a T x N x d GEMM: 2*T*d*N FLOPs.
double moe_router_forward_flops(double d, double experts, double granularity, double tokens);
// Bytes of the permutation (gather) in one direction: every assignment reads one row of x
// (d elements) and writes one row of the permuted buffer, 2 * T*G * d * elem. The combine reads
// T*G expert-output rows and writes T rows: (T*G + T) * d * elem.
double moe_permute_bytes(double d, double granularity, double tokens, double elem_bytes);
double moe_combine_bytes(double d, double granularity, double tokens, double elem_bytes);
// The combine's backward: each assignment reads dy of its token and its expert-output row and
// writes the row's gradient: (2 * T*G + T) * d * elem (dy [T, d] read once at least).
// The gather's backward (dx = sum of a token's row gradients) moves what the combine moves.
// These row counts leave out the 4-byte index and score of each row: under 1% for d >= 256.
double moe_combine_backward_bytes(double d, double granularity, double tokens, double elem_bytes);

// The least bytes one training step of the layer moves: its inputs read once (x and dy [T,d], the
// router [N,d], the expert weights 8*d^2*E) and its outputs written once (y, dx, and the gradients
// of the same weights): 2 * (2*T*d + N*d + 8*d^2*E) * elem.
double moe_step_bytes(double d, double experts, double granularity, double tokens, double elem_bytes);

}  // namespace wflops::flops
