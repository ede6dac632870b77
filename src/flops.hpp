// The FLOP model: every FLOP and byte count wflops reports is written here, once, with its
// derivation. Benchmarks, `wflops list`, the planner and the peers all call these functions, so a
// figure in one place always matches the figure in another.
//
// Conventions (../shared/CONVENTIONS.md):
//  - one multiply-add is 2 FLOPs;
//  - weight FLOPs (activations multiplied by weight matrices) are counted separately from
//    attention FLOPs (activations multiplied by activations) and MoE routing FLOPs;
//  - biases, norms, activations and residual additions are not weight FLOPs; where they matter
//    they are reported as bytes moved.
// Counts are doubles: 6*N*D for a real training run (~1e23) overflows int64, and a double holds
// every GEMM count below 2^53 (a 16384^3 GEMM is 8.8e12) exactly.
//
// Transformer parameter counts and per-token FLOPs live in flops_transformer.hpp (same module).
#pragma once
#include <cstdint>

namespace wflops::flops {

// ---- GEMM ----------------------------------------------------------------------------------
// C[M,N] = A[M,K] * B[K,N]: each of the M*N outputs is a dot product of length K, i.e. K
// multiply-adds = 2K FLOPs, so 2*M*N*K. (The beta*C term, when present, is not counted.)
double gemm(double m, double n, double k);

// The least bytes a GEMM must move: read A and B once, write C once.
double gemm_bytes(double m, double n, double k, double a_elem_bytes, double b_elem_bytes,
                  double c_elem_bytes);

// ---- Training steps of linear layers (weight FLOPs) -----------------------------------------
// A linear layer y = x W with W of shape [d_in, d_out] applied to T tokens:
//   forward         y  = x W          : a [T,d_in]x[d_in,d_out] GEMM, 2*W*T FLOPs (W = d_in*d_out)
//   input gradient  dx = dy W^T       : [T,d_out]x[d_out,d_in],          2*W*T
//   weight gradient dW = x^T dy       : [d_in,T]x[T,d_out],              2*W*T
// so a training step costs 6 FLOPs per weight per token: the 6 of C = 6*N*D.
double linear_forward(double weights, double tokens);        // 2*W*T
double linear_backward(double weights, double tokens);       // 4*W*T
double linear_training_step(double weights, double tokens);  // 6*W*T

// A training run over D tokens of a model with N (non-embedding) weights: C = 6*N*D.
double training_run(double params, double tokens);

// ---- MLP block (d -> d_ff -> d) ---------------------------------------------------------------
// Two weight matrices, d x d_ff and d_ff x d: 2*d*d_ff weights (biases are not weight FLOPs).
// E.g. d = 1600, d_ff = 6400: 20,480,000 weights.
double mlp_weights(double d, double d_ff);
double mlp_forward(double d, double d_ff, double tokens);        // 2 * weights * T
double mlp_training_step(double d, double d_ff, double tokens);  // 6 * weights * T

// ---- Attention (not weight FLOPs) -------------------------------------------------------------
// Per batch element and head, with sequence s and head dim d_h:
//   S = Q K^T : [s,d_h]x[d_h,s], 2*s*s*d_h FLOPs;   O = P V : [s,s]x[s,d_h], 2*s*s*d_h FLOPs,
// so the forward is 4*b*h*s^2*d_h. A causal mask leaves half of the s^2 scores, so half of it.
double attention_forward(double batch, double heads, double seq, double head_dim, bool causal);
// Backward, by the public convention (FlashAttention papers): 2.5x the forward. It counts the
// four backward GEMMs (dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q: 4 x 2*s^2*d_h = 2x
// forward) plus the recomputation of S = Q K^T (0.5x forward).
double attention_backward(double batch, double heads, double seq, double head_dim, bool causal);

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
