// Budget arithmetic: tau * T = C, checked on hand-computed cases.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "errors.hpp"
#include "model/budget.hpp"
#include "model/flops.hpp"

namespace {

using namespace wflops;

// 82e9 parameters x 150e9 tokens: 6 x 8.2e10 x 1.5e11 = 7.38e22 FLOPs. On 1024 A100 at the
// 312 TFLOP/s datasheet peak: 7.38e22 / (1024 x 3.12e14 = 3.19488e17) = 230,994.59 s
// = 2.67355 days ("about 2.67 days"); x 1024 GPUs / 3600 = 65,705.13 GPU-hours.
TEST(Budget, HundredBillionModelOnA100s) {
  const double flops = flops::training_run(82e9, 150e9);
  EXPECT_DOUBLE_EQ(flops, 7.38e22);
  const budget::TimeEstimate t = budget::time_for_flops(flops, 312.0, 1024.0);
  EXPECT_NEAR(t.seconds, 230994.59, 0.01);
  EXPECT_NEAR(t.days, 2.673549, 1e-6);
  EXPECT_NEAR(t.gpu_hours, 65705.13, 0.01);
}

// 64 H100 at 400 TFLOP/s for 60 days: 4e14 x 64 x 60 x 86400 = 1.327104e23 FLOPs (= 1.33e11
// TFLOPs; "132M TFLOPs" would be 1.32e20 FLOPs, a slip of 1000x).
TEST(Budget, SixtyDaysOnSixtyFourH100s) { EXPECT_DOUBLE_EQ(budget::flops_for_time(64, 60, 400), 1.327104e23); }

TEST(Budget, TimeAndBudgetAreInverse) {
  const double f = budget::flops_for_time(8, 3.5, 250);
  const auto t = budget::time_for_flops(f, 250, 8);
  EXPECT_NEAR(t.days, 3.5, 1e-12);
  EXPECT_NEAR(t.gpu_hours, 8 * 3.5 * 24, 1e-9);
}

TEST(Budget, RejectsNonPositiveAndNonFinite) {
  EXPECT_THROW(budget::time_for_flops(0, 312, 8), UserError);
  EXPECT_THROW(budget::time_for_flops(1e22, -1, 8), UserError);
  EXPECT_THROW(budget::time_for_flops(1e22, 312, std::nan("")), UserError);
  EXPECT_THROW(budget::flops_for_time(8, std::numeric_limits<double>::infinity(), 312), UserError);
}

}  // namespace
