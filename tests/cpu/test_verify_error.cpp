// The one error measure of every check (src/reference/verify_error.hpp), on values worked out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "reference/verify_error.hpp"

namespace wflops {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(ErrorSum, SumsSquaresAndTheLargestError) {
  // got - ref = (0, 0.5): err2 = 0.25, ref2 = 9 + 16 = 25, relative sqrt(0.25 / 25) = 0.1.
  const ErrorSum e({3, 4.5}, {3, 4});
  EXPECT_EQ(e.count(), 2u);
  EXPECT_EQ(e.nonfinite(), 0u);
  EXPECT_DOUBLE_EQ(e.err2(), 0.25);
  EXPECT_DOUBLE_EQ(e.ref2(), 25.0);
  EXPECT_DOUBLE_EQ(e.max_abs(), 0.5);
  EXPECT_DOUBLE_EQ(e.relative(), 0.1);
  // got - ref = (3, -4): ||err|| = 5 against ||ref|| = 4.
  EXPECT_DOUBLE_EQ(relative_error({3, 0}, {0, 4}), 5.0 / 4.0);
  EXPECT_DOUBLE_EQ(ErrorSum({3, 0}, {0, 4}).max_abs(), 4.0);
  EXPECT_DOUBLE_EQ(relative_error({1, 2}, {1, 2}), 0.0);
}

TEST(ErrorSum, ValuesAddedOneByOneOrMergedGiveTheSameSum) {
  ErrorSum one_by_one;
  one_by_one.add(1.0, 2.0);
  one_by_one.add(4.0, 2.0);
  ErrorSum merged({1.0}, {2.0});
  merged.add(ErrorSum({4.0}, {2.0}));
  for (const ErrorSum& e : {one_by_one, merged}) {
    EXPECT_EQ(e.count(), 2u);
    EXPECT_DOUBLE_EQ(e.err2(), 1.0 + 4.0);
    EXPECT_DOUBLE_EQ(e.ref2(), 4.0 + 4.0);
    EXPECT_DOUBLE_EQ(e.max_abs(), 2.0);
    EXPECT_DOUBLE_EQ(e.relative(), std::sqrt(5.0 / 8.0));
  }
}

TEST(ErrorSum, WithinIsStrictlyBelowTheTolerance) {
  const ErrorSum e({3, 4.5}, {3, 4});  // relative 0.1
  EXPECT_TRUE(e.within(0.11));
  EXPECT_FALSE(e.within(0.1));
  EXPECT_FALSE(e.within(0.05));
}

TEST(ErrorSum, AZeroReferenceMustBeMatchedExactly) {
  EXPECT_DOUBLE_EQ(relative_error({0, 0}, {0, 0}), 0.0);
  EXPECT_TRUE(ErrorSum({0, -0.0}, {0, 0}).within(1e-5));
  // Any error against no scale at all is infinitely large, however small it is.
  const ErrorSum tiny({0, 1e-30}, {0, 0});
  EXPECT_DOUBLE_EQ(tiny.max_abs(), 1e-30);
  EXPECT_EQ(tiny.relative(), kInf);
  EXPECT_FALSE(tiny.within(1.0));
}

TEST(ErrorSum, ANonFiniteValueAlwaysFails) {
  const ErrorSum nan_got({NAN, 4}, {3, 4});
  EXPECT_EQ(nan_got.count(), 2u);
  EXPECT_EQ(nan_got.nonfinite(), 1u);
  // The finite pair alone is in the sums (an exact match), yet the whole fails.
  EXPECT_DOUBLE_EQ(nan_got.err2(), 0.0);
  EXPECT_DOUBLE_EQ(nan_got.ref2(), 16.0);
  EXPECT_EQ(nan_got.relative(), kInf);
  EXPECT_FALSE(nan_got.within(kInf));
  EXPECT_EQ(relative_error({NAN}, {1}), kInf);
  EXPECT_EQ(relative_error({kInf, 1}, {1, 1}), kInf);
  EXPECT_EQ(relative_error({1, 1}, {1, -kInf}), kInf);  // a broken reference is no pass either
  EXPECT_EQ(relative_error({NAN}, {NAN}), kInf);
}

TEST(ErrorSum, SumsPastTheDoubleRangeAreInfiniteNotNaN) {
  // err2 = (2e200)^2 and ref2 = (1e200)^2 both overflow to +inf; their ratio would be NaN.
  const ErrorSum e({1e200}, {-1e200});
  EXPECT_EQ(e.relative(), kInf);
  EXPECT_FALSE(e.within(10.0));
}

TEST(ErrorSum, ComparingNothingFails) {
  EXPECT_EQ(ErrorSum().relative(), kInf);
  EXPECT_EQ(relative_error({}, {}), kInf);
  EXPECT_FALSE(ErrorSum().within(1.0));
}

TEST(ErrorSum, UnmatchedElementsCountAsNonFinite) {
  const ErrorSum e({1, 2, 3}, {1, 2});
  EXPECT_EQ(e.count(), 3u);
  EXPECT_EQ(e.nonfinite(), 1u);
  EXPECT_EQ(e.relative(), kInf);
  EXPECT_EQ(relative_error({1}, {1, 2}), kInf);
}

TEST(ErrorReport, PassesOnlyWhenEveryComparisonIsWithinItsTolerance) {
  ErrorReport r;
  r.add("dx", ErrorSum({1, 2}, {1, 2}), 1e-1);  // 0
  EXPECT_TRUE(r.ok());
  r.add("y", ErrorSum({3, 4.5}, {3, 4}), 1e-2);  // 0.1: fails
  EXPECT_FALSE(r.ok());
  EXPECT_DOUBLE_EQ(r.worst(), 0.1);
  EXPECT_DOUBLE_EQ(r.tolerance(), 1e-2);  // the strictest of 1e-1 and 1e-2
  EXPECT_EQ(r.detail("3 rows"), "relative errors: dx 0, y 0.1 (FAILS, tolerance 1e-02); 3 rows");
}

TEST(ErrorReport, ANonFiniteComparisonIsTheWorst) {
  ErrorReport r;
  r.add("probs", ErrorSum({0.5}, {0.5}), 1e-2);
  r.add("dW1", ErrorSum({NAN}, {1}), 1e-2);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.worst(), kInf);
  EXPECT_EQ(r.detail("x"), "relative errors: probs 0, dW1 inf (FAILS, tolerance 1e-02); x");
}

TEST(ErrorReport, NoComparisonIsNoPass) {
  const ErrorReport r;
  EXPECT_FALSE(r.ok());
  EXPECT_DOUBLE_EQ(r.worst(), 0.0);
  EXPECT_DOUBLE_EQ(r.tolerance(), 0.0);
}

}  // namespace
}  // namespace wflops
