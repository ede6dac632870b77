// The scaling-law planner: the loss formulas, the closed-form dense optimum, the MoE search
// (against an exhaustive search), its robustness over budgets 1e17..1e27, and tau from a file.
#include <gtest/gtest.h>

#include <cmath>

#include "errors.hpp"
#include "planner.hpp"
#include "result_reader.hpp"

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

TEST(Planner, MoeOptimumAt1e21) {
  const MoePlan p = plan_moe(1e21, 64, 16);
  EXPECT_EQ(p.n_blocks, 37);
  EXPECT_DOUBLE_EQ(p.d_model, 2368.0);
  EXPECT_NEAR(p.tokens, 1e21 / 16194240512.0, 1.0);
  EXPECT_NEAR(p.loss, 2.266866236376181, 1e-12);
  EXPECT_FALSE(p.at_search_bound);
  std::vector<MoePlan> all;
  for (double g : granularities()) all.push_back(plan_moe(1e21, 64, g));
  ASSERT_EQ(all.size(), 9u);
  EXPECT_DOUBLE_EQ(best_of(all).granularity, 16.0);
  // ((2.66250 - 0.47) / (2.26687 - 0.47))^((0.126 + 0.127) / (0.126 x 0.127)) = 23.2499.
  EXPECT_NEAR(dense_compute_multiplier(1e21, best_of(all).loss), 23.24989, 1e-4);
}

TEST(Planner, DenseMultiplierReachesTheTarget) {
  // The dense optimum at F x multiplier has exactly the target loss.
  const double m = dense_compute_multiplier(1e22, 2.0);
  EXPECT_NEAR(plan_dense(1e22 * m).loss, 2.0, 1e-9);
  EXPECT_TRUE(std::isinf(dense_compute_multiplier(1e22, 0.47)));
}

// The golden-section search with integer rounding finds what trying every n_blocks finds.
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
      EXPECT_EQ(p.n_blocks, best_n) << "F = " << flops << ", G = " << g;
      EXPECT_DOUBLE_EQ(p.loss, best_loss);
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
      EXPECT_TRUE(std::isfinite(p.loss) && std::isfinite(p.tokens)) << flops << " G " << g;
      EXPECT_GE(p.n_blocks, 1);
      EXPECT_LE(p.iterations, kMaxIterations);
      EXPECT_FALSE(p.at_search_bound) << flops << " G " << g;
      EXPECT_NEAR(p.flops / flops, 1.0, 1e-12);  // the whole budget is spent
      previous = std::min(previous, p.loss);
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
  EXPECT_NEAR(p.tokens * moe_gpu_seconds_per_token(p.n_blocks, 600, 450), seconds, seconds * 1e-12);
  EXPECT_NEAR(p.gpu_hours, 64 * 30 * 24.0, 1e-9);
  // A slower MoE step buys fewer tokens in the same time, so a higher loss.
  EXPECT_GT(plan_moe_in_time(seconds, 64, 8, 600, 150).loss, p.loss);
}

TEST(Planner, MeasuredTauFromResultFile) {
  const ResultFile f = read_result_file(WFLOPS_SOURCE_DIR "/tests/data/moe_h100.json");
  const MeasuredTau m = measured_tau(f, 64, "");
  EXPECT_DOUBLE_EQ(m.dense_tflops, 600.0);  // the faster of the two mlp_step benchmarks
  EXPECT_EQ(m.dense_benchmark, "mlp_step/fused_gelu_residual/bf16/d:2048/ff:8192/tok:32768");
  // G = 1..64 with E = 64; the E = 8 benchmark (999) and the failed G = 128 are left out.
  ASSERT_EQ(m.moe.size(), 7u);
  EXPECT_DOUBLE_EQ(m.moe.front().granularity, 1.0);
  EXPECT_DOUBLE_EQ(m.moe.front().tflops, 580.0);
  EXPECT_DOUBLE_EQ(m.moe[3].granularity, 8.0);
  EXPECT_DOUBLE_EQ(m.moe[3].tflops, 450.0);
  EXPECT_TRUE(m.notes.empty());
  // Another E: the file's moe_step benchmarks of other E, with a note saying so.
  const MeasuredTau other = measured_tau(f, 32, "");
  EXPECT_FALSE(other.notes.empty());
  EXPECT_DOUBLE_EQ(other.moe.front().tflops, 999.0);
  EXPECT_DOUBLE_EQ(measured_tau(f, 64, "mlp_step/fused_gelu_residual/bf16/d:1024/ff:4096/tok:32768").dense_tflops,
                   500.0);
  EXPECT_THROW(measured_tau(f, 64, "mlp_step/nope"), UserError);
  EXPECT_THROW(measured_tau(read_result_file(WFLOPS_SOURCE_DIR "/tests/data/a100.json"), 64, "matmul/x"), UserError);
  // No mlp_step in the file and none named: no dense tau.
  EXPECT_THROW(measured_tau(read_result_file(WFLOPS_SOURCE_DIR "/tests/data/h100.json"), 64, ""), UserError);
}

}  // namespace
