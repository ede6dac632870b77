// The host references of the fused residual-add + RMSNorm (kernels/model/rmsnorm_residual.cuh): a row by
// hand forward and backward, the scale invariance of RMSNorm (with eps = 0 the input gradient is
// orthogonal to s), and the backward against central finite differences through a, b and gamma.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <vector>

#include "finite_difference.hpp"
#include "model/rmsnorm_residual.cuh"

namespace wflops::kernels {

TEST(RmsNormHost, ByHand) {
  // s = [3, 4]: mean square 12.5, rrms = 1 / sqrt(12.5); gamma = [1, 2].
  const std::vector<double> a = {1, 4}, b = {2, 0}, gamma = {1, 2};
  std::vector<double> s(2), y(2), rrms(1);
  residual_rmsnorm_forward_host(a.data(), b.data(), gamma.data(), 1, 2, 0.0, s.data(), y.data(), rrms.data());
  const double r = 1 / std::sqrt(12.5);
  EXPECT_DOUBLE_EQ(s[0], 3);
  EXPECT_NEAR(rrms[0], r, 1e-15);
  EXPECT_NEAR(y[0], 3 * r, 1e-15);
  EXPECT_NEAR(y[1], 8 * r, 1e-15);
  // dy = [1, 0], gamma 1: xhat = s r, mean(g xhat) = 3 r / 2, ds = r (g - xhat 3 r / 2)
  //   = r [1 - 9 r² / 2, -12 r² / 2] = r [0.64, -0.48].
  const std::vector<double> dy = {1, 0}, ones = {1, 1};
  std::vector<double> ds(2), dgamma(2);
  rmsnorm_backward_host(dy.data(), s.data(), ones.data(), rrms.data(), nullptr, 1, 2, ds.data(), dgamma.data());
  EXPECT_NEAR(ds[0], 0.64 * r, 1e-15);
  EXPECT_NEAR(ds[1], -0.48 * r, 1e-15);
  EXPECT_NEAR(ds[0] * s[0] + ds[1] * s[1], 0, 1e-15);  // scaling s leaves y unchanged
  EXPECT_NEAR(dgamma[0], 3 * r, 1e-15);
  EXPECT_DOUBLE_EQ(dgamma[1], 0);
}

TEST(RmsNormHost, BackwardMatchesFiniteDifferences) {
  const std::size_t rows = 3, d = 7;
  const double eps = 1e-5, h = 1e-6;
  test_support::UniformVectors random(5);
  std::vector<double> a = random(rows * d), b = random(rows * d), gamma = random(d);
  const std::vector<double> w_y = random(rows * d), w_s = random(rows * d);
  // L = Σ w_y y + Σ w_s s: dL/dy = w_y, and w_s reaches s through the residual path.
  auto loss = [&]() {
    std::vector<double> s(rows * d), y(rows * d), rrms(rows);
    residual_rmsnorm_forward_host(a.data(), b.data(), gamma.data(), rows, d, eps, s.data(), y.data(), rrms.data());
    double l = 0;
    for (std::size_t i = 0; i < rows * d; ++i) l += w_y[i] * y[i] + w_s[i] * s[i];
    return l;
  };
  std::vector<double> s(rows * d), y(rows * d), rrms(rows), ds(rows * d), dgamma(d);
  residual_rmsnorm_forward_host(a.data(), b.data(), gamma.data(), rows, d, eps, s.data(), y.data(), rrms.data());
  rmsnorm_backward_host(w_y.data(), s.data(), gamma.data(), rrms.data(), w_s.data(), rows, d, ds.data(), dgamma.data());
  auto central = [&](std::vector<double>& x, std::size_t i) { return test_support::central_difference(loss, x, i, h); };
  for (std::size_t i = 0; i < rows * d; ++i) {
    EXPECT_NEAR(ds[i], central(a, i), 1e-7) << "a " << i;
    EXPECT_NEAR(ds[i], central(b, i), 1e-7) << "b " << i;
  }
  for (std::size_t c = 0; c < d; ++c) EXPECT_NEAR(dgamma[c], central(gamma, c), 1e-7) << "gamma " << c;
}

}  // namespace wflops::kernels
