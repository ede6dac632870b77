// The scaling-law planner: the loss formulas, the closed-form dense optimum, Brent's minimiser on
// functions with known minima, the MoE search (its continuous optimum against a closed form and an
// independent root-finder, its whole n_blocks against an exhaustive search), its robustness over
// budgets 1e17..1e27, the time search, and tau from a file matched to the planned model.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "errors.hpp"
#include "model/planner.hpp"
#include "results/result_reader.hpp"

namespace {

using namespace wflops;
using namespace wflops::planner;

TEST(Planner, LossFormulas) {
  // 0.47 + 16.3 / (1e9)^0.126 + 26.7 / (2e10)^0.127, computed separately.
  EXPECT_NEAR(dense_loss(DenseLaw{}, 1e9, 2e10), 2.980305149755157, 1e-12);
  // 0.47 + (2.1 / 8^0.58 + 18.1) / (1e11)^0.115 + 30.8 / (1e11)^0.147.
  EXPECT_NEAR(moe_loss(MoeLaw{}, 1e11, 1e11, 8), 2.231397898930412, 1e-12);
}

TEST(Planner, DenseOptimumAt1e21) {
  const DensePlan p = plan_dense(1e21);
  EXPECT_NEAR(p.params, 1.9506958449e9, 1e0);
  EXPECT_NEAR(p.tokens, 8.54395969011e10, 1e1);
  EXPECT_NEAR(6 * p.params * p.tokens, 1e21, 1e9);
  EXPECT_NEAR(p.loss, 2.6625046352807, 1e-10);
  // A minimum: moving N by 1% either way (keeping 6ND = F) costs loss.
  for (double f : {0.99, 1.01}) {
    EXPECT_GT(dense_loss(DenseLaw{}, p.params * f, 1e21 / (6 * p.params * f)), p.loss);
  }
}

TEST(Planner, MoeShapes) {
  // n_blocks = 37: d = 2368, d^2 = 5,607,424; total d^2 (8 x 64 + 4) n = 107,056,939,008;
  // active 12 d^2 n = 2,489,696,256; per token (12 d^2 x 6 + d x 64 x 16 x 14) x 37 =
  // (403,734,528 + 33,947,648) x 37 = 16,194,240,512.
  EXPECT_DOUBLE_EQ(moe_d_model(37), 2368.0);
  EXPECT_DOUBLE_EQ(moe_total_params(37, 64), 107056939008.0);
  EXPECT_DOUBLE_EQ(moe_active_params(37), 2489696256.0);
  EXPECT_DOUBLE_EQ(moe_flops_per_token(37, 64, 16), 16194240512.0);
}

TEST(Brent, QuadraticIsExactAfterOneParabola) {
  // (x - 2)^2 + 1 on [0, 5]: minimum 1 at x = 2. A parabola through any three points is the
  // function itself, so after the golden-section start the parabolic steps land on 2.
  int calls = 0;
  const Minimum m = minimise_brent(
      [&](double x) {
        ++calls;
        return (x - 2) * (x - 2) + 1;
      },
      0, 5);
  EXPECT_TRUE(m.converged);
  EXPECT_NEAR(m.x, 2.0, 1e-7);
  EXPECT_NEAR(m.f, 1.0, 1e-14);
  EXPECT_EQ(calls, m.iterations + 1);  // one evaluation per step and one at the start
  EXPECT_LT(m.iterations, 12);
}

TEST(Brent, KnownMinimaOfNonQuadraticFunctions) {
  // e^x - 2x: f' = e^x - 2 = 0 at x = ln 2, f = 2 - 2 ln 2.
  Minimum m = minimise_brent([](double x) { return std::exp(x) - 2 * x; }, -3, 4);
  EXPECT_TRUE(m.converged);
  EXPECT_NEAR(m.x, std::log(2.0), 1e-7);
  EXPECT_NEAR(m.f, 2 - 2 * std::log(2.0), 1e-14);
  // x^4 - 3x: f' = 4x^3 - 3 = 0 at x = (3/4)^(1/3) = 0.908560296416...
  m = minimise_brent([](double x) { return x * x * x * x - 3 * x; }, -2, 2);
  EXPECT_NEAR(m.x, std::cbrt(0.75), 1e-7);
  // |x - 0.3| has no parabola to fit; the golden-section steps still close in on the kink.
  m = minimise_brent([](double x) { return std::abs(x - 0.3); }, 0, 1);
  EXPECT_TRUE(m.converged);
  EXPECT_NEAR(m.x, 0.3, 1e-7);
  // A rounding-level tolerance is honoured: cosh(x - 1) around its minimum at 1, tol 1e-12
  // (far below sqrt(eps), where f no longer changes; x still lands within about 1e-8).
  m = minimise_brent([](double x) { return std::cosh(x - 1); }, -10, 10, 1e-12, 1e-14);
  EXPECT_NEAR(m.x, 1.0, 1e-7);
  EXPECT_DOUBLE_EQ(m.f, 1.0);
}

TEST(Brent, MonotoneFunctionEndsAtTheBoundWithoutEvaluatingIt) {
  // x on [1, 3]: the infimum is at 1; the minimiser stays inside and ends within 2 tol of it.
  double lowest = 10;
  const Minimum m = minimise_brent(
      [&](double x) {
        lowest = std::min(lowest, x);
        return x;
      },
      1, 3);
  EXPECT_TRUE(m.converged);
  EXPECT_GT(lowest, 1.0);
  EXPECT_NEAR(m.x, 1.0, 1e-7);
  // Reversed bounds are the same bracket; max_iterations stops a search that cannot converge.
  EXPECT_NEAR(minimise_brent([](double x) { return -x; }, 3, 1).x, 3.0, 1e-7);
  const Minimum capped = minimise_brent([](double x) { return x * x; }, -1, 2, 1e-15, 0, 3);
  EXPECT_FALSE(capped.converged);
  EXPECT_EQ(capped.iterations, 3);
}

TEST(Planner, MoeOptimumAt1e21) {
  // Continuous optimum at F = 1e21, E = 64, G = 16: n* = 37.1793672245478 (d = 2379.48),
  // N = 1.086214589246e11, D = 6.08837149731e10, loss 2.266863024270475, from a separate Python
  // script that solves dL/d(ln n) = 0 with mpmath.findroot at 40 digits on the same formulas.
  // A minimiser that compares loss values finds x = ln n to about sqrt(machine epsilon): near the
  // minimum the loss changes by less than its rounding for |dx| under ~3e-7 here. So n is checked
  // to 1e-6 relative, tokens (~ n^-3) to 3e-6, the loss to 1e-13.
  const MoePlan p = plan_moe(1e21, 64, 16);
  EXPECT_NEAR(p.continuous.n_blocks, 37.1793672245478, 37 * 1e-6);
  EXPECT_NEAR(p.continuous.d_model, 64 * p.continuous.n_blocks, 1e-9);
  EXPECT_NEAR(p.continuous.tokens, 6.08837149731e10, 6.1e10 * 3e-6);
  EXPECT_NEAR(p.continuous.loss, 2.266863024270475, 1e-13);
  EXPECT_NEAR(p.continuous.flops, 1e21, 1e21 * 1e-12);
  // Buildable: n = 37 (loss 2.266866236376181, below n = 38's), its own tokens 1e21 / 16,194,240,512
  // per token (MoeShapes above); 1.4% fewer total parameters than the continuous optimum.
  EXPECT_DOUBLE_EQ(p.buildable.n_blocks, 37.0);
  EXPECT_DOUBLE_EQ(p.buildable.d_model, 2368.0);
  EXPECT_NEAR(p.buildable.tokens, 1e21 / 16194240512.0, 1.0);
  EXPECT_NEAR(p.buildable.loss, 2.266866236376181, 1e-12);
  EXPECT_GT(p.buildable.loss, p.continuous.loss);
  EXPECT_FALSE(p.at_search_bound);
  std::vector<MoePlan> all;
  for (double g : granularities()) all.push_back(plan_moe(1e21, 64, g));
  ASSERT_EQ(all.size(), 9u);
  // Continuous losses by G from the same script: 8: 2.27344, 16: 2.26686, 32: 2.26817.
  EXPECT_DOUBLE_EQ(best_of(all).granularity, 16.0);
  // ((2.662504635 - 0.47) / (2.266863024 - 0.47))^((0.126 + 0.127) / (0.126 x 0.127)) = 23.25055
  // against the continuous optimum (23.24989 against the buildable n = 37, the old figure).
  EXPECT_NEAR(dense_compute_multiplier(1e21, best_of(all).continuous.loss), 23.25055, 1e-4);
}

// Without the routing term the MoE problem has a closed form, like the dense one: with
// N = k1 n^3 and D = F / (k2 n^3), L = c + A / (k1 M)^alpha + b (k2 M / F)^beta in M = n^3, so
// M* = (alpha A k1^-alpha / (beta b (k2/F)^beta))^(1/(alpha+beta)). The search must find it.
TEST(Planner, ContinuousOptimumMatchesTheClosedForm) {
  const MoeLaw law;
  const double F = 3e22, E = 64, G = 8;
  const double k1 = 4096 * (8 * E + 4), k2 = 72 * 4096;  // d^2 (8E + 4) n and 12 d^2 x 6 x n, d = 64 n
  const double A = law.g / std::pow(G, law.gamma) + law.a;
  const double M = std::pow(law.alpha * A * std::pow(k1, -law.alpha) / (law.beta * law.b * std::pow(k2 / F, law.beta)),
                            1 / (law.alpha + law.beta));
  const MoePlan p = optimise_blocks([&](double n) { return F / (k2 * n * n * n); }, E, G, law);
  EXPECT_NEAR(p.continuous.n_blocks, std::cbrt(M), std::cbrt(M) * 1e-6);
}

// Small budgets are where whole blocks bite: at 1e18 FLOPs and G = 16 the continuous optimum is
// n = 10.567 (same script), and the best whole model, n = 11, has 12.8% more parameters and
// 10.6% fewer tokens; at 1e17, G = 1: n = 7.327 against 7 (12.8% fewer parameters).
TEST(Planner, SmallModelsShiftByWholeBlocks) {
  const MoePlan p = plan_moe(1e18, 64, 16);
  EXPECT_NEAR(p.continuous.n_blocks, 10.5671256356261, 10 * 1e-6);
  EXPECT_NEAR(p.continuous.loss, 3.310273171546306, 1e-12);
  EXPECT_DOUBLE_EQ(p.buildable.n_blocks, 11.0);
  EXPECT_NEAR(p.buildable.loss, 3.310622654784898, 1e-12);
  EXPECT_NEAR(p.buildable.total_params / p.continuous.total_params, 1.128, 1e-3);
  EXPECT_NEAR(p.buildable.tokens / p.continuous.tokens, 1 - 0.1055, 1e-3);
  const MoePlan q = plan_moe(1e17, 64, 1);
  EXPECT_NEAR(q.continuous.n_blocks, 7.32731620772772, 1e-6);
  EXPECT_DOUBLE_EQ(q.buildable.n_blocks, 7.0);
}

TEST(Planner, DenseMultiplierReachesTheTarget) {
  // The dense optimum at F x multiplier has exactly the target loss.
  const double m = dense_compute_multiplier(1e22, 2.0);
  EXPECT_NEAR(plan_dense(1e22 * m).loss, 2.0, 1e-9);
  EXPECT_TRUE(std::isinf(dense_compute_multiplier(1e22, 0.47)));
}

// The continuous search with integer rounding finds what trying every whole n_blocks finds.
TEST(Planner, SearchMatchesExhaustiveSearch) {
  for (double flops : {1e17, 1e19, 3e21, 1e24}) {
    for (double g : {1.0, 8.0, 256.0}) {
      const MoePlan p = plan_moe(flops, 64, g);
      int best_n = 1;
      double best_loss = 1e300;
      for (int n = 1; n <= 3000; ++n) {
        const double loss = moe_loss(MoeLaw{}, moe_total_params(n, 64), flops / moe_flops_per_token(n, 64, g), g);
        if (loss < best_loss) {
          best_loss = loss;
          best_n = n;
        }
      }
      EXPECT_DOUBLE_EQ(p.buildable.n_blocks, best_n) << "F = " << flops << ", G = " << g;
      EXPECT_DOUBLE_EQ(p.buildable.loss, best_loss);
      EXPECT_LE(p.continuous.loss, best_loss);  // the continuous optimum is never worse
    }
  }
}

TEST(Planner, RobustFrom1e17To1e27) {
  for (double e = 17; e <= 27.0001; e += 0.25) {
    const double flops = std::pow(10.0, e);
    const DensePlan d = plan_dense(flops);
    EXPECT_TRUE(std::isfinite(d.loss) && d.params > 0 && d.tokens > 0) << flops;
    double previous = 1e300;
    for (double g : granularities()) {
      const MoePlan p = plan_moe(flops, 64, g);
      EXPECT_TRUE(std::isfinite(p.continuous.loss) && std::isfinite(p.continuous.tokens)) << flops << " G " << g;
      EXPECT_TRUE(std::isfinite(p.buildable.loss) && std::isfinite(p.buildable.tokens)) << flops << " G " << g;
      EXPECT_GE(p.buildable.n_blocks, 1);
      EXPECT_LE(std::abs(p.buildable.n_blocks - p.continuous.n_blocks), 1.0);
      EXPECT_LE(p.continuous.loss, p.buildable.loss);
      EXPECT_LE(p.iterations, kMaxIterations);
      EXPECT_FALSE(p.at_search_bound) << flops << " G " << g;
      EXPECT_NEAR(p.continuous.flops / flops, 1.0, 1e-12);  // the whole budget is spent
      EXPECT_NEAR(p.buildable.flops / flops, 1.0, 1e-12);
      previous = std::min(previous, p.continuous.loss);
    }
    // More compute never hurts: the loss at 10^e is below the dense loss (MoE wins at E = 64).
    EXPECT_LT(previous, d.loss) << flops;
  }
}

TEST(Planner, GpuSecondsPerToken) {
  // n = 10, d = 640: attention 6 x 4d^2 = 9,830,400 FLOPs at 500 TFLOP/s = 1.96608e-8 s, experts
  // 6 x 8d^2 = 19,660,800 at 250 TFLOP/s = 7.86432e-8 s; x 10 blocks = 9.8304e-7 s.
  EXPECT_NEAR(moe_gpu_seconds_per_token(10, 500, 250), 9.8304e-7, 1e-19);
}

TEST(Planner, TimeSearchSpendsTheGpuTime) {
  const double seconds = 64 * 30 * 86400.0;
  const MoePlan p = plan_moe_in_time(seconds, 64, 8, 600, 450);
  for (const MoeShape& s : {p.continuous, p.buildable}) {
    EXPECT_NEAR(s.tokens * moe_gpu_seconds_per_token(s.n_blocks, 600, 450), seconds, seconds * 1e-12);
    EXPECT_NEAR(s.gpu_hours, 64 * 30 * 24.0, 1e-9);
  }
  // 64 GPUs x 30 days, dense tau 600, MoE tau 450 at G = 8: n* = 84.3260478591, loss
  // 1.824123042316293 (the Python script, findroot on dL/d(ln n) with the time model).
  EXPECT_NEAR(p.continuous.n_blocks, 84.3260478591, 84 * 1e-6);
  EXPECT_NEAR(p.continuous.loss, 1.824123042316293, 1e-12);
  EXPECT_DOUBLE_EQ(p.buildable.n_blocks, 84.0);
  // A slower MoE step buys fewer tokens in the same time, so a higher loss.
  EXPECT_GT(plan_moe_in_time(seconds, 64, 8, 600, 150).continuous.loss, p.continuous.loss);
}

MoeTau row(double g, double d, double tflops, const std::string& name) {
  MoeTau r;
  r.granularity = g;
  r.d_model = d;
  r.tokens = 32768;
  r.tflops = r.raw_tflops = tflops;
  r.benchmark = name;
  return r;
}

TEST(Planner, NearestRowInRatio) {
  const std::vector<MoeTau> rows = {row(8, 768, 1, "a"), row(8, 2048, 2, "b"), row(8, 4096, 3, "c")};
  EXPECT_EQ(nearest_row(rows, 100).benchmark, "a");
  EXPECT_EQ(nearest_row(rows, 1254).benchmark, "a");  // sqrt(768 x 2048) = 1254.1: just below
  EXPECT_EQ(nearest_row(rows, 1255).benchmark, "b");
  EXPECT_EQ(nearest_row(rows, 2896).benchmark, "b");  // sqrt(2048 x 4096) = 2896.3
  EXPECT_EQ(nearest_row(rows, 2897).benchmark, "c");
  EXPECT_EQ(nearest_row({row(8, 1024, 1, "x"), row(8, 4096, 1, "y")}, 2048).benchmark, "y");  // tie: larger d
  EXPECT_EQ(nearest_row(rows, 1e6).benchmark, "c");
}

// With tau measured at two d, each model is priced at the row nearest its own d. At G = 16 with
// 360 TFLOP/s at d = 2048 and 300 at d = 4096 (the switch at n = sqrt(2048 x 4096) / 64 =
// 45.25), the optimum with 300 everywhere, n* = 78.4505182611 (loss 1.842860607602973, the Python
// script), lies on the d = 4096 side and beats the best of the d = 2048 side (at most the loss at
// the switch with 360, 1.8642), so it is the answer; an exhaustive search over whole n agrees.
TEST(Planner, TimeSearchPricesEachModelAtItsNearestD) {
  const double seconds = 64 * 30 * 86400.0;
  const std::vector<MoeTau> rows = {row(16, 2048, 360, "d2048"), row(16, 4096, 300, "d4096")};
  const MoePlan p = plan_moe_in_time(seconds, 64, 16, 600, rows);
  EXPECT_NEAR(p.continuous.n_blocks, 78.4505182611, 78 * 1e-6);
  EXPECT_NEAR(p.continuous.loss, 1.842860607602973, 1e-12);
  EXPECT_EQ(p.continuous.tau_benchmark, "d4096");
  EXPECT_DOUBLE_EQ(p.continuous.tau_tflops, 300.0);
  EXPECT_DOUBLE_EQ(p.continuous.tau_d_model, 4096.0);
  int best_n = 0;
  double best_loss = 1e300;
  for (int n = 1; n <= 3000; ++n) {
    const double tau = nearest_row(rows, 64.0 * n).tflops;
    const double tokens = seconds / moe_gpu_seconds_per_token(n, 600, tau);
    const double loss = moe_loss(MoeLaw{}, moe_total_params(n, 64), tokens, 16);
    if (loss < best_loss) {
      best_loss = loss;
      best_n = n;
    }
  }
  EXPECT_DOUBLE_EQ(p.buildable.n_blocks, best_n);
  EXPECT_DOUBLE_EQ(p.buildable.loss, best_loss);
  EXPECT_EQ(p.buildable.tau_benchmark, "d4096");
  // When the small-d row is much faster, the optimum sits at the top of its piece: priced at
  // d = 2048, just under the switch (a bigger model would be priced at the slow row).
  const std::vector<MoeTau> steep = {row(16, 2048, 900, "fast"), row(16, 4096, 100, "slow")};
  const MoePlan q = plan_moe_in_time(seconds, 64, 16, 600, steep);
  EXPECT_EQ(q.continuous.tau_benchmark, "fast");
  EXPECT_NEAR(q.continuous.n_blocks, std::sqrt(2048.0 * 4096.0) / 64, 1e-5);
  EXPECT_LT(q.continuous.n_blocks, std::sqrt(2048.0 * 4096.0) / 64);
  EXPECT_DOUBLE_EQ(q.buildable.n_blocks, 45.0);  // the largest whole n on the fast side
  EXPECT_EQ(q.buildable.tau_benchmark, "fast");
}

// A FLOP-budget model priced in GPU time: tokens x seconds per token at its nearest row.
TEST(Planner, PriceInTime) {
  MoeShape s;
  s.n_blocks = 10;
  s.d_model = 640;
  s.tokens = 1e9;
  price_in_time(s, 500, {row(8, 768, 250, "near"), row(8, 2048, 999, "far")});
  EXPECT_EQ(s.tau_benchmark, "near");
  EXPECT_NEAR(s.gpu_hours, 1e9 * 9.8304e-7 / 3600, 1e-9);  // GpuSecondsPerToken's figure
}

// Writes moe_h100.json with extra moe_step rows to a temporary file and reads it back.
ResultFile fixture_with(const std::vector<std::pair<std::string, double>>& extra, const std::string& file_name) {
  std::ifstream src(WFLOPS_SOURCE_DIR "/tests/data/moe_h100.json");
  nlohmann::json file = nlohmann::json::parse(src);
  nlohmann::json templ = file["benchmarks"][2];  // a successful moe_step row
  for (const auto& [name, tflops] : extra) {
    nlohmann::json b = templ;
    const BenchmarkName n = parse_benchmark_name(name);
    b["name"] = b["run_name"] = name;
    b["tflops"] = tflops;
    b["flops"] = 6 * 8 * *n.number("d") * *n.number("d") * *n.number("tok");  // expert weight FLOPs
    file["benchmarks"].push_back(b);
  }
  const auto path = std::filesystem::temp_directory_path() / file_name;
  std::ofstream(path) << file.dump(1);
  ResultFile f = read_result_file(path);
  std::filesystem::remove(path);
  return f;
}

TEST(Planner, MeasuredTauFromResultFile) {
  const ResultFile f = read_result_file(WFLOPS_SOURCE_DIR "/tests/data/moe_h100.json");
  const MeasuredTau m = measured_tau(f, 64, "");
  EXPECT_DOUBLE_EQ(m.dense_tflops, 600.0);  // the faster of the two mlp_step benchmarks
  EXPECT_EQ(m.dense_benchmark, "mlp_step/fused_gelu_residual/bf16/d:2048/ff:8192/tok:32768");
  EXPECT_EQ(m.routing, "expert_choice");
  // G = 1..64 with E = 64 at d = 2048; the E = 8 benchmark (999) and the failed G = 128 are left out.
  ASSERT_EQ(m.moe.size(), 7u);
  EXPECT_EQ(m.measured_granularities(), (std::vector<double>{1, 2, 4, 8, 16, 32, 64}));
  EXPECT_DOUBLE_EQ(m.moe.front().granularity, 1.0);
  EXPECT_DOUBLE_EQ(m.moe.front().tflops, 580.0);
  EXPECT_DOUBLE_EQ(m.moe.front().d_model, 2048.0);
  EXPECT_DOUBLE_EQ(m.moe.front().tokens, 32768.0);
  EXPECT_DOUBLE_EQ(m.moe[3].granularity, 8.0);
  EXPECT_DOUBLE_EQ(m.moe[3].tflops, 450.0);
  EXPECT_TRUE(m.notes.empty());
  // Another E: rows of other E are not the planned configuration; none is used, and a note says
  // which E the file has.
  const MeasuredTau other = measured_tau(f, 32, "");
  EXPECT_TRUE(other.moe.empty());
  ASSERT_EQ(other.notes.size(), 1u);
  EXPECT_NE(other.notes[0].find("no successful moe_step benchmark with E = 32 and route:expert_choice"),
            std::string::npos)
      << other.notes[0];
  EXPECT_NE(other.notes[0].find("E = 8, E = 64"), std::string::npos) << other.notes[0];
  EXPECT_TRUE(measured_tau(f, 64, "", "token_choice").moe.empty());
  EXPECT_DOUBLE_EQ(measured_tau(f, 64, "mlp_step/fused_gelu_residual/bf16/d:1024/ff:4096/tok:32768").dense_tflops,
                   500.0);
  EXPECT_THROW(measured_tau(f, 64, "mlp_step/nope"), UserError);
  EXPECT_THROW(measured_tau(read_result_file(WFLOPS_SOURCE_DIR "/tests/data/a100.json"), 64, "matmul/x"), UserError);
  // No mlp_step in the file and none named: no dense tau.
  EXPECT_THROW(measured_tau(read_result_file(WFLOPS_SOURCE_DIR "/tests/data/h100.json"), 64, ""), UserError);
}

// Rows that the fastest-per-G rule would take and that do not match the planned model: another
// routing (faster at every G), another d, a smaller token count (both faster at G = 8). Only the
// matching rows are kept, one per (G, d): at G = 8 the d = 768 row beside the d = 2048 one, at
// d = 2048 the 32768-token row (450) over the faster 8192-token one (500).
TEST(Planner, MeasuredTauKeepsTheMatchingRows) {
  const std::string pre = "moe_step/grouped/bf16/";
  std::vector<std::pair<std::string, double>> extra;
  for (int g : {1, 2, 4, 8, 16, 32, 64})
    extra.emplace_back(pre + "d:2048/E:64/G:" + std::to_string(g) + "/tok:32768/route:token_choice", 700.0);
  extra.emplace_back(pre + "d:768/E:64/G:8/tok:32768/route:expert_choice", 590.0);
  extra.emplace_back(pre + "d:2048/E:64/G:8/tok:8192/route:expert_choice", 500.0);
  extra.emplace_back("moe_step/loop/bf16/d:2048/E:64/G:8/tok:32768/route:expert_choice", 440.0);
  const ResultFile f = fixture_with(extra, "wflops_planner_rows_test.json");
  const MeasuredTau m = measured_tau(f, 64, "");
  ASSERT_EQ(m.moe.size(), 8u);
  const std::vector<MoeTau> g8 = m.at_granularity(8);
  ASSERT_EQ(g8.size(), 2u);
  EXPECT_DOUBLE_EQ(g8[0].d_model, 768.0);
  EXPECT_DOUBLE_EQ(g8[0].tflops, 590.0);
  EXPECT_EQ(g8[1].benchmark, pre + "d:2048/E:64/G:8/tok:32768/route:expert_choice");  // over loop's 440
  EXPECT_DOUBLE_EQ(g8[1].tflops, 450.0);
  for (const MoeTau& r : m.moe) EXPECT_EQ(r.benchmark.find("token_choice"), std::string::npos) << r.benchmark;
  // The planned d picks between them: a d = 5397 model is priced at the d = 2048 row.
  EXPECT_DOUBLE_EQ(nearest_row(g8, 5397).tflops, 450.0);
  // Token choice: its own rows.
  const MeasuredTau t = measured_tau(f, 64, "", "token_choice");
  ASSERT_EQ(t.moe.size(), 7u);
  for (const MoeTau& r : t.moe) EXPECT_DOUBLE_EQ(r.tflops, 700.0);
}

// The whole plan in FLOPs: the pieces above put together, with nothing measured.
TEST(PlanBudget, InFlopsIsTheSearchOverEveryG) {
  const Plan p = plan_budget(1e21, 64);
  EXPECT_DOUBLE_EQ(p.flops, 1e21);
  EXPECT_DOUBLE_EQ(p.experts, 64.0);
  EXPECT_DOUBLE_EQ(p.dense.params, plan_dense(1e21).params);
  ASSERT_EQ(p.moe_by_granularity.size(), granularities().size());
  for (std::size_t i = 0; i < p.moe_by_granularity.size(); ++i) {
    EXPECT_DOUBLE_EQ(p.moe_by_granularity[i].granularity, granularities()[i]);
    EXPECT_DOUBLE_EQ(p.moe_by_granularity[i].continuous.loss, plan_moe(1e21, 64, granularities()[i]).continuous.loss);
    EXPECT_LE(p.moe.continuous.loss, p.moe_by_granularity[i].continuous.loss);
  }
  // MoeOptimumAt1e21's figures: G = 16, n_blocks 37.179, buildable 37.
  EXPECT_DOUBLE_EQ(p.moe.granularity, 16.0);
  EXPECT_NEAR(p.moe.continuous.n_blocks, 37.1793672245478, 37 * 1e-6);
  EXPECT_DOUBLE_EQ(p.moe.buildable.n_blocks, 37.0);
  EXPECT_NEAR(p.dense_compute_multiplier, 23.25055, 1e-4);
  EXPECT_NEAR(p.dense_compute_multiplier_buildable, 23.24989, 1e-4);
  EXPECT_FALSE(p.time.has_value());
  EXPECT_TRUE(p.notes.empty());
}

// 64 GPUs x 30 days of moe_h100.json (dense tau 600, moe tau 580 at G = 1 down to 150 at G = 64):
// per FLOP G = 32 wins, in time G = 8 (loss 1.824123042316293, TimeSearchSpendsTheGpuTime's).
TEST(PlanBudget, InTimeWithTheMeasuredTau) {
  const MeasuredTau m = measured_tau(read_result_file(WFLOPS_SOURCE_DIR "/tests/data/moe_h100.json"), 64, "");
  const double seconds = 64 * 30 * 86400.0;
  const double flops = seconds * 600e12;  // 9.95328e22
  const Plan p = plan_budget(flops, 64, m, seconds);
  ASSERT_TRUE(p.time.has_value());
  const TimeSearch& t = *p.time;
  EXPECT_DOUBLE_EQ(t.gpu_seconds, seconds);
  EXPECT_DOUBLE_EQ(t.tau.dense_tflops, 600.0);
  EXPECT_NEAR(t.dense.flops, flops, flops * 1e-15);
  ASSERT_EQ(t.rows.size(), 7u);
  for (std::size_t i = 0; i < t.rows.size(); ++i) {
    const TimeRow& r = t.rows[i];
    EXPECT_DOUBLE_EQ(r.granularity, m.measured_granularities()[i]);
    ASSERT_EQ(r.rows.size(), 1u);
    // The FLOP-optimal model at this G, priced in hours; the time-optimal one spends all of them.
    EXPECT_DOUBLE_EQ(r.flop_optimal.continuous.n_blocks, plan_moe(flops, 64, r.granularity).continuous.n_blocks);
    EXPECT_GT(r.flop_optimal.continuous.gpu_hours, 0.0);
    EXPECT_NEAR(r.time_optimal.continuous.gpu_hours, 64 * 30 * 24.0, 1e-9);
    EXPECT_GE(r.time_optimal.continuous.loss, t.rows[t.time_best].time_optimal.continuous.loss);
    EXPECT_GE(r.flop_optimal.continuous.loss, t.rows[t.flop_best].flop_optimal.continuous.loss);
  }
  EXPECT_DOUBLE_EQ(t.rows[t.flop_best].granularity, 32.0);
  EXPECT_DOUBLE_EQ(t.rows[t.time_best].granularity, 8.0);
  EXPECT_NEAR(t.rows[t.time_best].time_optimal.continuous.loss, 1.824123042316293, 1e-12);
  // Every model (d_model 4400-6200) is priced at the only measured d, 2048: one note says so.
  ASSERT_EQ(p.notes.size(), 1u);
  EXPECT_EQ(p.notes[0].rfind("G = 1, 2, 4, 8, 16, 32, 64: a planned model's d_model is over 2x", 0), 0u) << p.notes[0];
  // Without a GPU time the budget's FLOPs at the dense tau are the time: here the same seconds.
  const Plan q = plan_budget(flops, 64, m);
  ASSERT_TRUE(q.time.has_value());
  EXPECT_NEAR(q.time->gpu_seconds, seconds, seconds * 1e-15);
  EXPECT_NEAR(q.time->rows[q.time->time_best].time_optimal.continuous.loss, 1.824123042316293, 1e-12);
}

// A file without rows for the planned E: its note, then why there is no search in time.
TEST(PlanBudget, NoMatchingRowsNoSearchInTime) {
  const MeasuredTau m = measured_tau(read_result_file(WFLOPS_SOURCE_DIR "/tests/data/moe_h100.json"), 32, "");
  const Plan p = plan_budget(1e22, 32, m, 1e7);
  EXPECT_FALSE(p.time.has_value());
  ASSERT_EQ(p.notes.size(), 2u);
  EXPECT_EQ(p.notes[0], m.notes[0]);
  EXPECT_EQ(p.notes[1], "no search in time");
  EXPECT_DOUBLE_EQ(p.moe.continuous.loss, best_of(plan_budget(1e22, 32).moe_by_granularity).continuous.loss);
}

// One FLOP: every G's optimum is the smallest model searched, and each says so.
TEST(PlanBudget, TinyBudgetSitsOnTheSearchLimit) {
  const Plan p = plan_budget(1, 64);
  EXPECT_TRUE(p.moe.at_search_bound);
  EXPECT_NEAR(p.moe.continuous.n_blocks, 1.0, 1e-6);
  ASSERT_EQ(p.notes.size(), 9u);
  EXPECT_EQ(p.notes[0], "G = 1: the optimum sits on the n_blocks search limit");
  EXPECT_EQ(p.notes[8], "G = 256: the optimum sits on the n_blocks search limit");
}

// The budgets that plan: at each end of the range the best MoE is an optimum, just outside it is
// the search limit; the range moves up with E (more parameters per block).
TEST(PlanBudget, PlannableRange) {
  const FlopRange r = plannable_flops(64);
  EXPECT_DOUBLE_EQ(r.lo, 2.3e12);
  EXPECT_DOUBLE_EQ(r.hi, 2.7e39);
  EXPECT_FALSE(plan_budget(r.lo, 64).moe.at_search_bound);
  EXPECT_FALSE(plan_budget(r.hi, 64).moe.at_search_bound);
  EXPECT_TRUE(plan_budget(r.lo / 1.05, 64).moe.at_search_bound);
  EXPECT_TRUE(plan_budget(r.hi * 1.05, 64).moe.at_search_bound);
  EXPECT_LT(plan_budget(r.lo / 1.05, 64).moe.continuous.n_blocks, 1.0 + 1e-6);
  EXPECT_GT(plan_budget(r.hi * 1.05, 64).moe.continuous.n_blocks, kMaxBlocks * (1.0 - 1e-6));
  const FlopRange wide = plannable_flops(1e6);
  EXPECT_GT(wide.lo, r.lo);
  EXPECT_FALSE(plan_budget(wide.lo, 1e6).moe.at_search_bound);
  EXPECT_TRUE(plan_budget(wide.lo / 1.05, 1e6).moe.at_search_bound);
  EXPECT_DOUBLE_EQ(wide.hi, 1e40);  // the largest budget accepted still plans
}

}  // namespace
