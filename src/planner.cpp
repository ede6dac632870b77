#include "planner.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "budget.hpp"
#include "errors.hpp"
#include "flops.hpp"

namespace wflops::planner {

double dense_loss(const DenseLaw& law, double params, double tokens) {
  return law.c + law.a / std::pow(params, law.alpha) + law.b / std::pow(tokens, law.beta);
}

double moe_loss(const MoeLaw& law, double total_params, double tokens, double granularity) {
  return law.c + (law.g / std::pow(granularity, law.gamma) + law.a) / std::pow(total_params, law.alpha) +
         law.b / std::pow(tokens, law.beta);
}

DensePlan plan_dense(double flops, const DenseLaw& law) {
  DensePlan p;
  p.flops = flops;
  const double s = law.alpha + law.beta;
  // 6ND = F: training_run(N, D) = F, so D = F / training_run(N, 1).
  p.params = std::pow(law.alpha * law.a / (law.beta * law.b), 1.0 / s) *
             std::pow(flops / flops::training_run(1.0, 1.0), law.beta / s);
  p.tokens = flops / flops::training_run(p.params, 1.0);
  p.loss = dense_loss(law, p.params, p.tokens);
  return p;
}

double dense_compute_multiplier(double flops, double target_loss, const DenseLaw& law) {
  const double excess_target = target_loss - law.c;
  if (!(excess_target > 0)) return std::numeric_limits<double>::infinity();
  const double excess_dense = plan_dense(flops, law).loss - law.c;
  const double exponent = (law.alpha + law.beta) / (law.alpha * law.beta);
  return std::pow(excess_dense / excess_target, exponent);
}

double moe_d_model(double n_blocks) { return kDModelPerBlock * n_blocks; }

double moe_total_params(double n_blocks, double experts) {
  const double d = moe_d_model(n_blocks);
  return d * d * (8.0 * experts + 4.0) * n_blocks;
}

double moe_active_params(double n_blocks) {
  const double d = moe_d_model(n_blocks);
  return 12.0 * d * d * n_blocks;
}

double moe_flops_per_token(double n_blocks, double experts, double granularity) {
  return flops::moe_block_step_per_token(moe_d_model(n_blocks), experts, granularity) * n_blocks;
}

namespace {

double loss_at(const TokensFor& tokens_for, double n, double experts, double granularity, const MoeLaw& law) {
  return moe_loss(law, moe_total_params(n, experts), tokens_for(n), granularity);
}

}  // namespace

MoePlan optimise_blocks(const TokensFor& tokens_for, double experts, double granularity, const MoeLaw& law) {
  // Golden-section search over x = ln(n_blocks) in [0, ln kMaxBlocks]: each step keeps 0.618 of
  // the bracket, so ~50 steps reach a bracket of 1e-9; kMaxIterations bounds it whatever happens
  // (a NaN comparison is false and only moves the bracket, it cannot loop forever).
  const double inv_phi = (std::sqrt(5.0) - 1.0) / 2.0;
  double lo = 0.0, hi = std::log(kMaxBlocks);
  auto f = [&](double x) { return loss_at(tokens_for, std::exp(x), experts, granularity, law); };
  double x1 = hi - inv_phi * (hi - lo), x2 = lo + inv_phi * (hi - lo);
  double f1 = f(x1), f2 = f(x2);
  int it = 0;
  for (; it < kMaxIterations && hi - lo > 1e-9; ++it) {
    if (f1 < f2) {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - inv_phi * (hi - lo);
      f1 = f(x1);
    } else {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + inv_phi * (hi - lo);
      f2 = f(x2);
    }
  }
  const double n_cont = std::exp(0.5 * (lo + hi));
  // Whole blocks: the better of the two integers around the continuous optimum (convexity makes
  // one of them the integer optimum).
  const double lower = std::max(1.0, std::floor(n_cont));
  const double upper = std::min(kMaxBlocks, std::max(1.0, std::ceil(n_cont)));
  const double n = loss_at(tokens_for, lower, experts, granularity, law) <=
                           loss_at(tokens_for, upper, experts, granularity, law)
                       ? lower
                       : upper;
  MoePlan p;
  p.n_blocks = static_cast<int>(n);
  p.d_model = moe_d_model(n);
  p.active_params = moe_active_params(n);
  p.total_params = moe_total_params(n, experts);
  p.tokens = tokens_for(n);
  p.granularity = granularity;
  p.loss = moe_loss(law, p.total_params, p.tokens, granularity);
  p.flops = p.tokens * moe_flops_per_token(n, experts, granularity);
  p.at_search_bound = n_cont < 1.0 + 1e-6 || n_cont > kMaxBlocks * (1.0 - 1e-6);
  p.iterations = it;
  return p;
}

MoePlan plan_moe(double flops, double experts, double granularity, const MoeLaw& law) {
  // F = (12 d^2 c_f + d E G c_r) * D * n_blocks, solved for D.
  const TokensFor tokens_for = [=](double n) { return flops / moe_flops_per_token(n, experts, granularity); };
  return optimise_blocks(tokens_for, experts, granularity, law);
}

std::vector<double> granularities() {
  std::vector<double> g;
  for (double v = 1; v <= 256; v *= 2) g.push_back(v);
  return g;
}

MoePlan best_of(const std::vector<MoePlan>& plans) {
  return *std::min_element(plans.begin(), plans.end(),
                           [](const MoePlan& x, const MoePlan& y) { return x.loss < y.loss; });
}

double moe_gpu_seconds_per_token(double n_blocks, double dense_tflops, double moe_tflops) {
  const double d = moe_d_model(n_blocks);
  const double attention = flops::linear_training_step(4.0 * d * d, 1.0);     // 6 * 4d^2
  const double experts = flops::moe_expert_weight_flops(d, 1.0);              // 6 * 8d^2
  return n_blocks * (attention / (dense_tflops * budget::kTera) + experts / (moe_tflops * budget::kTera));
}

MoePlan plan_moe_in_time(double gpu_seconds, double experts, double granularity, double dense_tflops,
                         double moe_tflops, const MoeLaw& law) {
  const TokensFor tokens_for = [=](double n) {
    return gpu_seconds / moe_gpu_seconds_per_token(n, dense_tflops, moe_tflops);
  };
  MoePlan p = optimise_blocks(tokens_for, experts, granularity, law);
  p.gpu_hours = gpu_seconds / budget::kSecondsPerHour;
  return p;
}

}  // namespace wflops::planner

namespace wflops::planner {

namespace {

bool power_of_two_granularity(double g) {
  for (double v : granularities()) {
    if (g == v) return true;
  }
  return false;
}

// The benchmark's flops counter should be the expert weight FLOPs 6 * 8d^2 * tok
// (CONVENTIONS.md); if it also counted routing, rescale so that tau is expert-weight FLOP/s over
// the measured time, the quantity moe_gpu_seconds_per_token() divides by.
double expert_weight_tflops(const BenchmarkResult& b, const BenchmarkName& n) {
  const auto d = n.number("d"), tok = n.number("tok");
  if (!d || !tok || !b.flops || !(*b.flops > 0)) return *b.tflops;
  return *b.tflops * flops::moe_expert_weight_flops(*d, *tok) / *b.flops;
}

}  // namespace

MeasuredTau measured_tau(const ResultFile& file, double experts, const std::string& dense_benchmark) {
  MeasuredTau m;
  if (!dense_benchmark.empty()) {
    m.dense_tflops = measured_tflops(file, dense_benchmark);
    m.dense_benchmark = dense_benchmark;
  } else {
    for (const auto& b : file.benchmarks) {
      if (b.failed || !b.tflops || parse_benchmark_name(b.name).family != "mlp_step") continue;
      if (*b.tflops > m.dense_tflops) {
        m.dense_tflops = *b.tflops;
        m.dense_benchmark = b.name;
      }
    }
    if (m.dense_benchmark.empty()) {
      throw UserError(fmt::format("'{}' has no successful mlp_step benchmark for the dense tau; name one with --benchmark",
                                  file.path));
    }
  }
  bool has_experts = false;
  for (const auto& b : file.benchmarks) {
    const auto n = parse_benchmark_name(b.name);
    if (n.family == "moe_step" && n.number("E") == experts) has_experts = true;
  }
  std::map<double, MoeTau> best;
  for (const auto& b : file.benchmarks) {
    const auto n = parse_benchmark_name(b.name);
    if (n.family != "moe_step" || b.failed || !b.tflops || !(*b.tflops > 0)) continue;
    if (has_experts && n.number("E") != experts) continue;
    const auto g = n.number("G");
    if (!g || !power_of_two_granularity(*g)) continue;
    const double tau = expert_weight_tflops(b, n);
    if (!best.count(*g) || tau > best[*g].tflops) best[*g] = MoeTau{*g, tau, *b.tflops, b.name};
  }
  if (!best.empty() && !has_experts) {
    m.notes.push_back(fmt::format("'{}' has no moe_step benchmark with E = {}; using its moe_step benchmarks of other E",
                                  file.path, experts));
  }
  for (const auto& [g, t] : best) m.moe.push_back(t);
  return m;
}

}  // namespace wflops::planner
