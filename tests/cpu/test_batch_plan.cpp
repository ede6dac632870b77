// The harness's batch planning: batch sizes from the measured per-launch time and stream operations,
// when a batch may be held behind the blocking kernel, when warm-up may end, and the autotune choice.
// Every expected value below is worked out by hand from the constants in src/batch_plan.hpp.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "batch_plan.hpp"
#include "cuda/harness.hpp"

namespace wflops::batch_plan {

TEST(BatchPlan, ConstantsKeepABlockedBatchWellInsideTheStreamQueue) {
  // About a thousand operations fit in a stream's queue; a blocked batch must stay far below that.
  EXPECT_LE(kMaxBlockedOps, 512);
  EXPECT_GE(kTargetSeconds, 1e-3) << "events resolve ~0.5 us: shorter batches lose precision";
  EXPECT_GE(kWarmupMinSeconds, 0.2);
  EXPECT_GT(kWarmupMaxSeconds, kWarmupMinSeconds);
}

TEST(BatchPlan, BlockedLaunchesCountStreamOperations) {
  // (500 - 3 overhead) / ops, rounded down.
  EXPECT_EQ(max_blocked_launches(1), 497);
  EXPECT_EQ(max_blocked_launches(20), 24);  // an unfused MLP step: 497 / 20 = 24.85
  EXPECT_EQ(max_blocked_launches(400), 1);  // the MoE loop at G = 1
  EXPECT_EQ(max_blocked_launches(497), 1);
  EXPECT_EQ(max_blocked_launches(498), 0);    // one launch alone would pass the limit
  EXPECT_EQ(max_blocked_launches(25000), 0);  // the MoE loop at G = 64
  EXPECT_EQ(max_blocked_launches(0), 0) << "unknown: never blocked";
  EXPECT_EQ(max_blocked_launches(-1), 0);
}

TEST(BatchPlan, SmallKernelsFillOneMillisecondUpToTheOperationLimit) {
  Plan p = plan_batch(5e-6, 1, false);  // 1 ms / 5 us = 200 launches of one kernel each
  EXPECT_TRUE(p.blocked);
  EXPECT_EQ(p.launches, 200);
  EXPECT_TRUE(p.why.empty());
  p = plan_batch(1e-6, 1, false);  // 1000 wanted, 497 fit
  EXPECT_TRUE(p.blocked);
  EXPECT_EQ(p.launches, 497);
  p = plan_batch(4e-4, 1, false);  // 2.5 launches: rounded up
  EXPECT_EQ(p.launches, 3);
}

TEST(BatchPlan, MultiKernelStepsAreCappedByTheirOperations) {
  Plan p = plan_batch(50e-6, 20, false);  // 20 wanted, 24 fit
  EXPECT_TRUE(p.blocked);
  EXPECT_EQ(p.launches, 20);
  p = plan_batch(10e-6, 20, false);  // 100 wanted, 24 fit: 480 + 3 operations held
  EXPECT_TRUE(p.blocked);
  EXPECT_EQ(p.launches, 24);
  p = plan_batch(2e-3, 400, false);  // a long step: one launch, still blocked
  EXPECT_TRUE(p.blocked);
  EXPECT_EQ(p.launches, 1);
}

TEST(BatchPlan, TooManyOperationsOrUnknownOnesAreTimedWithoutTheBlock) {
  Plan p = plan_batch(30e-3, 25000, false);
  EXPECT_FALSE(p.blocked);
  EXPECT_EQ(p.launches, 1);
  EXPECT_NE(p.why.find("25000 stream operations"), std::string::npos) << p.why;
  p = plan_batch(1e-4, 0, false);  // the count failed: 10 launches, not held back
  EXPECT_FALSE(p.blocked);
  EXPECT_EQ(p.launches, 10);
  EXPECT_NE(p.why.find("could not be counted"), std::string::npos) << p.why;
  p = plan_batch(2e-3, 10, true);  // it waits for the GPU itself
  EXPECT_FALSE(p.blocked);
  EXPECT_EQ(p.launches, 1);
  EXPECT_NE(p.why.find("waits for the GPU"), std::string::npos) << p.why;
}

TEST(BatchPlan, LaunchCountsAreBoundedAtBothEnds) {
  EXPECT_EQ(plan_batch(1e-9, 0, false).launches, kMaxLaunches);  // 1e6 wanted
  EXPECT_EQ(plan_batch(0.0, 0, false).launches, kMaxLaunches);   // unmeasurably fast
  EXPECT_EQ(plan_batch(0.0, 2, false).launches, 248);            // blocked: 497 / 2
  EXPECT_EQ(plan_batch(5.0, 2, false).launches, 1);              // a 5 s launch: one
}

TEST(BatchPlan, WarmupGrowsTheBatchUntilItPassesOneMillisecond) {
  EXPECT_EQ(next_warmup_launches(1, 1e-5, 1, true), 2);
  EXPECT_EQ(next_warmup_launches(256, 0.5e-3, 1, true), 497);  // 512 would pass the operation limit
  EXPECT_EQ(next_warmup_launches(64, 1.2e-3, 1, true), 64) << "past 1 ms: stops growing";
  EXPECT_EQ(next_warmup_launches(16, 1e-4, 20, true), 24);
  EXPECT_EQ(next_warmup_launches(1, 1e-4, 25000, false), 2);  // not blocked: no operation limit
  EXPECT_EQ(next_warmup_launches(3000, 1e-4, 0, false), kMaxLaunches);
  EXPECT_EQ(next_warmup_launches(0, 1e-4, 1, true), 2) << "at least one launch to start from";
}

TEST(BatchPlan, WarmupLastsTheMinimumAndUntilTheClockSettles) {
  EXPECT_FALSE(warmup_done(0.1, {}));
  EXPECT_TRUE(warmup_done(0.2, {})) << "without NVML the minimum time suffices";
  // Still climbing: 1980 MHz now against 1400 MHz 0.1 s ago (the 0.28 s sample is inside the window).
  EXPECT_FALSE(warmup_done(0.3, {{0.0, 1000}, {0.2, 1400}, {0.28, 1980}, {0.3, 1980}}));
  // Settled: 1980 against 1965 0.08 s before, 15 MHz <= 2% of 1980 (39.6).
  EXPECT_TRUE(warmup_done(0.3, {{0.1, 1400}, {0.22, 1965}, {0.3, 1980}}));
  // At the tolerance: 39 MHz apart passes, 40 does not.
  EXPECT_TRUE(warmup_done(0.3, {{0.1, 1941}, {0.3, 1980}}));
  EXPECT_FALSE(warmup_done(0.3, {{0.1, 1940}, {0.3, 1980}}));
  // Samples spanning less than the 50 ms window say nothing yet.
  EXPECT_FALSE(warmup_done(0.3, {{0.28, 1980}, {0.3, 1980}}));
  // A clock that never settles ends warm-up at the maximum.
  EXPECT_TRUE(warmup_done(1.0, {{0.5, 1400}, {1.0, 1980}}));
}

TEST(BatchPlan, Median) {
  EXPECT_FALSE(median({}));
  EXPECT_DOUBLE_EQ(*median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(*median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(*median({7}), 7);
}

TEST(BatchPlan, AutotuneKeepsTheHeuristicsChoiceUnlessAnotherIsClearlyFaster) {
  EXPECT_EQ(choose_candidate({1.0, 0.99}), 0u) << "1% faster is noise";
  EXPECT_EQ(choose_candidate({1.0, 0.97}), 1u) << "1 / 0.97 = 1.031: more than 2% faster";
  EXPECT_EQ(choose_candidate({1.0, 0.97, 0.95}), 2u) << "the fastest, not the first that beats it";
  EXPECT_EQ(choose_candidate({1.0, std::nullopt, 0.9}), 2u);
  EXPECT_EQ(choose_candidate({1.0}), 0u);
  EXPECT_EQ(choose_candidate({1.0, 0.97}, 0.05), 0u) << "within a 5% margin";
  // The first did not run: the fastest of the rest.
  EXPECT_EQ(choose_candidate({std::nullopt, 2.0, 1.5}), 2u);
  EXPECT_FALSE(choose_candidate({std::nullopt, std::nullopt}));
  EXPECT_FALSE(choose_candidate({}));
}

// What `wflops run` calls first: eager module loading, unless the user chose otherwise.
TEST(EagerModuleLoading, SetsEagerButKeepsTheUsersChoice) {
  const char* before = std::getenv("CUDA_MODULE_LOADING");
  const std::string saved = before ? before : "";
  unsetenv("CUDA_MODULE_LOADING");
  prefer_eager_module_loading();
  ASSERT_NE(std::getenv("CUDA_MODULE_LOADING"), nullptr);
  EXPECT_STREQ(std::getenv("CUDA_MODULE_LOADING"), "EAGER");
  setenv("CUDA_MODULE_LOADING", "LAZY", 1);
  prefer_eager_module_loading();
  EXPECT_STREQ(std::getenv("CUDA_MODULE_LOADING"), "LAZY");
  if (before) {
    setenv("CUDA_MODULE_LOADING", saved.c_str(), 1);
  } else {
    unsetenv("CUDA_MODULE_LOADING");
  }
}

}  // namespace wflops::batch_plan
