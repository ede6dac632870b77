// `wflops plan`: compute-optimal dense and fine-grained MoE models for a training budget, from
// the scaling laws of fine-grained MoE (constants below), first in FLOPs, then in GPU time using
// measured tau: a finer granularity G lowers the loss per FLOP but its many small experts run at
// a lower tau, so the best G per hour can differ from the best G per FLOP.
//
// Model shapes (as in the scaling-law study): d_model = 64 * n_blocks; an MoE block has attention
// (4d^2) and E experts' worth of MLP weights (8d^2 * E), N_total = d^2 (8E + 4) n_blocks, of which
// 12 d^2 n_blocks are active per token. A step costs (12 d^2 c_f + d E G c_r) per token and block
// (flops::moe_block_step_per_token), F = that * D * n_blocks.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "result_reader.hpp"

namespace wflops::planner {

// L(N, D) = c + a / N^alpha + b / D^beta
struct DenseLaw {
  double a = 16.3, alpha = 0.126, b = 26.7, beta = 0.127, c = 0.47;
};
// L(N, D, G) = c + (g / G^gamma + a) / N^alpha + b / D^beta
struct MoeLaw {
  double a = 18.1, alpha = 0.115, b = 30.8, beta = 0.147, g = 2.1, gamma = 0.58, c = 0.47;
};

double dense_loss(const DenseLaw& law, double params, double tokens);
double moe_loss(const MoeLaw& law, double total_params, double tokens, double granularity);

struct DensePlan {
  double flops = 0, params = 0, tokens = 0, loss = 0;
};
// Minimises dense_loss subject to 6ND = F. Closed form: dL/dN = 0 with D = F/(6N) gives
// alpha a N^-alpha = beta b (6N/F)^beta, so N* = (alpha a / (beta b))^(1/(alpha+beta)) *
// (F/6)^(beta/(alpha+beta)).
DensePlan plan_dense(double flops, const DenseLaw& law = {});

// How many times the FLOPs of `flops` a compute-optimal dense model needs to reach `target_loss`.
// The optimal dense loss falls as L*(F) - c = K F^-(alpha beta/(alpha+beta)), so the multiplier is
// ((L*(F) - c) / (target - c))^((alpha+beta)/(alpha beta)). Infinity when target <= c.
double dense_compute_multiplier(double flops, double target_loss, const DenseLaw& law = {});

// ---- MoE shapes -------------------------------------------------------------------------------
inline constexpr double kDModelPerBlock = 64.0;  // d_model = 64 n_blocks
double moe_d_model(double n_blocks);
double moe_total_params(double n_blocks, double experts);  // d^2 (8E + 4) n_blocks
double moe_active_params(double n_blocks);                 // 12 d^2 n_blocks
double moe_flops_per_token(double n_blocks, double experts, double granularity);

struct MoePlan {
  int n_blocks = 0;
  double d_model = 0, active_params = 0, total_params = 0, tokens = 0, granularity = 0, loss = 0;
  double flops = 0;       // FLOPs of the training run (tokens x flops per token)
  double gpu_hours = 0;   // when a time model was given: GPU-hours of the run, else 0
  bool at_search_bound = false;  // the optimum sat on the n_blocks search limit
  int iterations = 0;            // golden-section iterations used
};

// Tokens a candidate with n_blocks (continuous) can train on within the budget.
using TokensFor = std::function<double(double n_blocks)>;

// The n_blocks in [1, kMaxBlocks] that minimises the MoE loss when the model with n_blocks trains
// on tokens_for(n_blocks) tokens. The loss is convex in ln(n_blocks) (a decreasing power of N plus
// an increasing power of the per-token cost), so a golden-section search over ln(n) finds the
// continuous optimum; the better of its two neighbouring integers is returned.
inline constexpr double kMaxBlocks = 1e5;
inline constexpr int kMaxIterations = 200;
MoePlan optimise_blocks(const TokensFor& tokens_for, double experts, double granularity, const MoeLaw& law = {});

// FLOP-optimal MoE for a budget of `flops` at one granularity, and over G = 1, 2, 4, ..., 256.
MoePlan plan_moe(double flops, double experts, double granularity, const MoeLaw& law = {});
std::vector<double> granularities();  // 1, 2, 4, ..., 256
MoePlan best_of(const std::vector<MoePlan>& plans);  // lowest loss

// GPU time per token of a training step, with tau in TFLOP/s per GPU: the attention projections
// (6 * 4d^2 per block) at the dense tau, the expert weights (6 * 8d^2 per block) at the MoE step's
// weight tau for this G (its measured time includes routing and dispatch, so routing FLOPs are
// not charged again).
double moe_gpu_seconds_per_token(double n_blocks, double dense_tflops, double moe_tflops);

// Time-optimal MoE at granularity G: the loss-minimising n_blocks when the run may take
// `gpu_seconds` of GPU time (GPU count x wall-clock seconds).
MoePlan plan_moe_in_time(double gpu_seconds, double experts, double granularity, double dense_tflops,
                         double moe_tflops, const MoeLaw& law = {});

// ---- measured tau from a result file ----------------------------------------------------------
struct MoeTau {
  double granularity = 0;
  double tflops = 0;      // expert-weight TFLOP/s: 6 * 8d^2 * tokens / measured time
  double raw_tflops = 0;  // the benchmark's own tflops counter
  std::string benchmark;
};
struct MeasuredTau {
  double dense_tflops = 0;
  std::string dense_benchmark;
  std::vector<MoeTau> moe;         // one per measured power-of-two G in [1, 256], ascending
  std::vector<std::string> notes;  // choices made (E not measured, ...)
};
// Dense tau: the named benchmark, or the fastest mlp_step when `dense_benchmark` is empty.
// MoE tau(G): the fastest moe_step benchmark per G, with E = experts when the file has that E.
// Throws UserError when no dense tau can be found.
MeasuredTau measured_tau(const ResultFile& file, double experts, const std::string& dense_benchmark);

}  // namespace wflops::planner
