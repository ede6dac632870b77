// `wflops plan`: compute-optimal dense and fine-grained MoE models for a training budget, from
// the scaling laws of fine-grained MoE (Krajewski et al. 2024, "Scaling Laws for Fine-Grained
// Mixture of Experts", arXiv:2402.07871; constants below), first in FLOPs, then in GPU time using
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
#include <optional>
#include <string>
#include <vector>

#include "results/result_reader.hpp"

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

// ---- a 1-D minimiser ---------------------------------------------------------------------------
// Brent's method (R. P. Brent, "Algorithms for Minimization without Derivatives", 1973, ch. 5):
// the minimum of f on [lo, hi] for an f with one local minimum there. Each step fits a parabola
// through the three best points so far and moves to its vertex when that vertex lies inside the
// bracket and the step is under half the step before last (so the bracket still shrinks);
// otherwise it takes a golden-section step into the larger part of the bracket. It never
// evaluates f at lo or hi, and stops when every point of the bracket is within
// 2 (rel_tol |x| + abs_tol) of the best point x.
struct Minimum {
  double x = 0, f = 0;
  int iterations = 0;      // steps taken, each one evaluation of f (plus one at the start)
  bool converged = false;  // the tolerance was reached within max_iterations
};
Minimum minimise_brent(const std::function<double(double)>& f, double lo, double hi, double rel_tol = 1.5e-8,
                       double abs_tol = 1e-12, int max_iterations = 200);

// ---- MoE shapes -------------------------------------------------------------------------------
inline constexpr double kDModelPerBlock = 64.0;  // d_model = 64 n_blocks
double moe_d_model(double n_blocks);
double moe_total_params(double n_blocks, double experts);  // d^2 (8E + 4) n_blocks
double moe_active_params(double n_blocks);                 // 12 d^2 n_blocks
double moe_flops_per_token(double n_blocks, double experts, double granularity);

// One model of the MoE family: n_blocks real for the scaling law's continuous optimum, whole for a
// buildable architecture.
struct MoeShape {
  double n_blocks = 0, d_model = 0, active_params = 0, total_params = 0, tokens = 0, loss = 0;
  double flops = 0;      // FLOPs of the training run (tokens x flops per token)
  double gpu_hours = 0;  // when a time model was given: GPU-hours of the run, else 0
  // When a time model was given: the moe_step row whose tau priced this model's expert weights
  // (the measured d nearest to d_model), else empty and 0.
  std::string tau_benchmark;
  double tau_tflops = 0, tau_d_model = 0;
};

// The scaling-law study finds its optimum over a continuous model size (with Brent's method) and
// only then picks an architecture; so does this: `continuous` is the optimum over real n_blocks (d_model = 64 n_blocks
// taken as a real number too), `buildable` the better of the two whole n_blocks around it (with its
// own tokens and loss; the loss is convex in ln n_blocks, so that is also the best whole n_blocks).
struct MoePlan {
  double granularity = 0;
  MoeShape continuous, buildable;
  bool at_search_bound = false;  // the continuous optimum sat on the n_blocks search limit
  int iterations = 0;            // minimiser steps used, over all pieces
};

// Tokens a candidate with n_blocks (continuous) can train on within the budget.
using TokensFor = std::function<double(double n_blocks)>;

// Minimises the MoE loss over n_blocks in [1, kMaxBlocks] when the model with n_blocks trains on
// tokens_for(n_blocks) tokens. The loss is convex in x = ln(n_blocks): N = 4096 (8E + 4) e^(3x), so
// a / N^alpha is a decreasing exponential of x; the per-token cost is a sum of exponentials of x
// (12 d^2 c_f n = k2 e^(3x), d E G c_r n = k3 e^(2x), or the time model's k e^(3x)), whose logarithm
// is convex (log-sum-exp), so b / D^beta = b (cost / budget)^beta = exp(beta ln(cost) + const) is
// convex too; Brent's method over x therefore finds the continuous optimum. `breakpoints` are
// n_blocks where tokens_for may jump (measured tau switching from one d to the next); the search
// runs on each piece between them and keeps the lowest loss.
inline constexpr double kMaxBlocks = 1e5;
inline constexpr int kMaxIterations = 200;
MoePlan optimise_blocks(const TokensFor& tokens_for, double experts, double granularity, const MoeLaw& law = {},
                        const std::vector<double>& breakpoints = {});

// FLOP-optimal MoE for a budget of `flops` at one granularity, and over G = 1, 2, 4, ..., 256.
MoePlan plan_moe(double flops, double experts, double granularity, const MoeLaw& law = {});
std::vector<double> granularities();  // 1, 2, 4, ..., 256
// Lowest continuous loss: the scaling law's choice of G (ties: the first).
MoePlan best_of(const std::vector<MoePlan>& plans);

// GPU time per token of a training step, with tau in TFLOP/s per GPU: the attention projections
// (6 * 4d^2 per block) at the dense tau, the expert weights (6 * 8d^2 per block) at the MoE step's
// weight tau for this G (its measured time includes routing and dispatch, so routing FLOPs are
// not charged again).
double moe_gpu_seconds_per_token(double n_blocks, double dense_tflops, double moe_tflops);

// ---- measured tau from a result file ----------------------------------------------------------
struct MoeTau {
  double granularity = 0;
  double d_model = 0;     // the benchmark's d
  double tokens = 0;      // the benchmark's tok
  double tflops = 0;      // expert-weight TFLOP/s: 6 * 8d^2 * tokens / measured time
  double raw_tflops = 0;  // the benchmark's own tflops counter
  std::string benchmark;
};
inline constexpr const char* kDefaultRouting = "expert_choice";
struct MeasuredTau {
  double dense_tflops = 0;
  std::string dense_benchmark;
  std::string routing;  // the route:... the moe rows were taken with
  // One row per measured (power-of-two G in [1, 256], d): of the successful moe_step benchmarks
  // with E = experts and this routing at that G and d, those with the largest token count, and of
  // them the fastest. Sorted by G, then d.
  std::vector<MoeTau> moe;
  std::vector<std::string> notes;                      // what could not be matched
  std::vector<double> measured_granularities() const;  // ascending, each once
  std::vector<MoeTau> at_granularity(double g) const;  // ascending d
};
// Dense tau: the named benchmark, or the fastest mlp_step when `dense_benchmark` is empty.
// Throws UserError when no dense tau can be found.
MeasuredTau measured_tau(const ResultFile& file, double experts, const std::string& dense_benchmark,
                         const std::string& routing = kDefaultRouting);

// The row of `rows` (one G, any d) whose d is nearest to d_model in ratio, |ln(d / d_model)|; a tie
// goes to the larger d. Rows must not be empty.
const MoeTau& nearest_row(const std::vector<MoeTau>& rows, double d_model);

// Time-optimal MoE at granularity G: the loss-minimising n_blocks when the run may take
// `gpu_seconds` of GPU time (GPU count x wall-clock seconds), each candidate's expert weights
// priced at the tau of the row nearest its own d_model (rows: one G, ascending d).
MoePlan plan_moe_in_time(double gpu_seconds, double experts, double granularity, double dense_tflops,
                         const std::vector<MoeTau>& rows, const MoeLaw& law = {});
// The same with one tau for every d.
MoePlan plan_moe_in_time(double gpu_seconds, double experts, double granularity, double dense_tflops, double moe_tflops,
                         const MoeLaw& law = {});
// Prices a FLOP-budget shape in GPU time: tokens x seconds per token at the dense tau and the tau
// of the row nearest its d_model; fills gpu_hours and the tau_* fields.
void price_in_time(MoeShape& shape, double dense_tflops, const std::vector<MoeTau>& rows);

// ---- a whole plan: the FLOP search over every G and, with measured tau, the search in time ----
// A planned d_model more than this factor from the measured d that priced it gets a note.
inline constexpr double kFarRatio = 2.0;

// The search in GPU time at one measured G.
struct TimeRow {
  double granularity = 0;
  std::vector<MoeTau> rows;  // the measured rows at this G, one per d
  MoePlan flop_optimal;      // the FLOP search's models at this G, priced in GPU-hours
  MoePlan time_optimal;      // the best models at this G within the GPU time
};

struct TimeSearch {
  double gpu_seconds = 0;
  MeasuredTau tau;
  std::vector<TimeRow> rows;                 // one per measured G, ascending
  DensePlan dense;                           // dense model trained for the same GPU time at the dense tau
  std::size_t flop_best = 0, time_best = 0;  // indices into rows, by continuous loss
};

struct Plan {
  double flops = 0, experts = 0;
  DensePlan dense;
  std::vector<MoePlan> moe_by_granularity;  // one per granularities()
  MoePlan moe;                              // best_of(moe_by_granularity)
  // The compute a dense model needs, in multiples of the budget, to reach the MoE's continuous
  // and buildable losses.
  double dense_compute_multiplier = 0, dense_compute_multiplier_buildable = 0;
  std::optional<TimeSearch> time;  // when a measured tau with moe_step rows was given
  // What the reader should know: the measured tau's own notes, models priced far from their d,
  // granularities whose optimum sits on the n_blocks search limit.
  std::vector<std::string> notes;
};

// The plan for a budget of `flops`: dense and MoE models at every G, the best G, and, when
// `measured` is given, the same search in GPU time priced with it. The GPU time is
// `gpu_seconds` (GPU count x wall-clock seconds) when given, else the time `flops` take at the
// measured dense tau.
Plan plan_budget(double flops, double experts, const std::optional<MeasuredTau>& measured = std::nullopt,
                 std::optional<double> gpu_seconds = std::nullopt);

// The FLOP budgets whose best MoE is an optimum rather than a search limit: below `lo` even the
// smallest model of the family (one block, d_model 64) is larger than compute-optimal, above `hi`
// the largest searched (kMaxBlocks) is too small; both rounded inwards to two significant digits,
// and found by bisection in [1, budget::kMaxFlops]. lo > hi when no budget there plans.
struct FlopRange {
  double lo = 0, hi = 0;
};
FlopRange plannable_flops(double experts);

}  // namespace wflops::planner
