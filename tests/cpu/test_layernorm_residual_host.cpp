// The host references of the fused residual-add + LayerNorm (kernels/model/layernorm_residual.cuh): a row
// by hand forward and backward, and the backward against central finite differences of the forward
// through both paths of the residual (a and b), gamma and beta. The GPU kernels are checked against
// these references.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <vector>

#include "finite_difference.hpp"
#include "model/layernorm_residual.cuh"

namespace wflops::kernels {

namespace {

// The scalar a finite-difference check differentiates: L = Σ w_y · y + Σ w_s · s, so that
// dL/dy = w_y and the gradient reaching s from the residual path is w_s.
double weighted_loss(const std::vector<double>& a, const std::vector<double>& b, const std::vector<double>& gamma,
                     const std::vector<double>& beta, const std::vector<double>& w_y, const std::vector<double>& w_s,
                     std::size_t rows, std::size_t d, double eps) {
  std::vector<double> s(rows * d), y(rows * d), mean(rows), rstd(rows);
  residual_layernorm_forward_host(a.data(), b.data(), gamma.data(), beta.data(), rows, d, eps, s.data(), y.data(),
                                  mean.data(), rstd.data());
  double loss = 0;
  for (std::size_t i = 0; i < rows * d; ++i) loss += w_y[i] * y[i] + w_s[i] * s[i];
  return loss;
}

}  // namespace

TEST(LayerNormHost, ForwardByHand) {
  // s = a + b = [1, 2, 3]: mean 2, biased variance 2/3, rstd = sqrt(3/2) (eps = 0).
  const std::vector<double> a = {0.5, 2, 1}, b = {0.5, 0, 2}, gamma = {1, 2, -1}, beta = {0, 0.5, 0.25};
  std::vector<double> s(3), y(3), mean(1), rstd(1);
  residual_layernorm_forward_host(a.data(), b.data(), gamma.data(), beta.data(), 1, 3, 0.0, s.data(), y.data(),
                                  mean.data(), rstd.data());
  const double r = std::sqrt(1.5);
  EXPECT_DOUBLE_EQ(s[0], 1);
  EXPECT_DOUBLE_EQ(s[2], 3);
  EXPECT_DOUBLE_EQ(mean[0], 2);
  EXPECT_NEAR(rstd[0], r, 1e-15);
  EXPECT_NEAR(y[0], -r, 1e-15);         // xhat = -r, gamma 1, beta 0
  EXPECT_NEAR(y[1], 0.5, 1e-15);        // xhat = 0: beta alone
  EXPECT_NEAR(y[2], -r + 0.25, 1e-15);  // xhat = r, gamma -1
  // Without b the input is normalised as it is.
  residual_layernorm_forward_host(s.data(), nullptr, gamma.data(), beta.data(), 1, 3, 0.0, s.data(), y.data(),
                                  mean.data(), rstd.data());
  EXPECT_NEAR(y[0], -r, 1e-15);
  // eps enters under the root: rstd = 1 / sqrt(2/3 + 1/3) = 1.
  residual_layernorm_forward_host(a.data(), b.data(), gamma.data(), beta.data(), 1, 3, 1.0 / 3.0, s.data(), y.data(),
                                  mean.data(), rstd.data());
  EXPECT_NEAR(rstd[0], 1, 1e-15);
}

TEST(LayerNormHost, BackwardByHand) {
  // s = [1, 2, 3], gamma 1, dy = [1, 0, 0]: xhat = r·[-1, 0, 1] with r = sqrt(3/2); mean(g) = 1/3,
  // mean(g xhat) = -r/3, so ds = r (g - 1/3 + xhat r/3) = r [1/6, -1/3, 1/6]. dgamma = dy xhat, dbeta = dy.
  const double r = std::sqrt(1.5);
  const std::vector<double> s = {1, 2, 3}, gamma = {1, 1, 1}, dy = {1, 0, 0}, mean = {2}, rstd = {r};
  std::vector<double> ds(3), dgamma(3), dbeta(3);
  layernorm_backward_host(dy.data(), s.data(), gamma.data(), mean.data(), rstd.data(), nullptr, 1, 3, ds.data(),
                          dgamma.data(), dbeta.data());
  EXPECT_NEAR(ds[0], r / 6, 1e-15);
  EXPECT_NEAR(ds[1], -r / 3, 1e-15);
  EXPECT_NEAR(ds[2], r / 6, 1e-15);
  EXPECT_NEAR(dgamma[0], -r, 1e-15);
  EXPECT_DOUBLE_EQ(dgamma[1], 0);
  EXPECT_DOUBLE_EQ(dbeta[0], 1);
  EXPECT_DOUBLE_EQ(dbeta[2], 0);
  // The LayerNorm's input gradient sums to zero over a row (shifting s leaves y unchanged); the
  // residual gradient is added on top.
  EXPECT_NEAR(ds[0] + ds[1] + ds[2], 0, 1e-15);
  const std::vector<double> dres = {0.5, -1, 2};
  layernorm_backward_host(dy.data(), s.data(), gamma.data(), mean.data(), rstd.data(), dres.data(), 1, 3, ds.data(),
                          dgamma.data(), dbeta.data());
  EXPECT_NEAR(ds[1], -r / 3 - 1, 1e-15);
  EXPECT_NEAR(ds[2], r / 6 + 2, 1e-15);
}

TEST(LayerNormHost, DimensionTwoHasNoInputGradient) {
  // With d = 2 and eps = 0, xhat = ±1 whatever the (distinct) inputs: the output does not move with
  // s, so ds is the residual gradient alone.
  const std::vector<double> a = {0.3, -1.7}, gamma = {2, 0.5}, beta = {0, 0}, dy = {1, -3};
  std::vector<double> s(2), y(2), mean(1), rstd(1), ds(2), dgamma(2), dbeta(2);
  residual_layernorm_forward_host(a.data(), nullptr, gamma.data(), beta.data(), 1, 2, 0.0, s.data(), y.data(),
                                  mean.data(), rstd.data());
  EXPECT_NEAR(y[0], 2, 1e-14);
  EXPECT_NEAR(y[1], -0.5, 1e-14);
  layernorm_backward_host(dy.data(), s.data(), gamma.data(), mean.data(), rstd.data(), nullptr, 1, 2, ds.data(),
                          dgamma.data(), dbeta.data());
  EXPECT_NEAR(ds[0], 0, 1e-14);
  EXPECT_NEAR(ds[1], 0, 1e-14);
}

TEST(LayerNormHost, BackwardMatchesFiniteDifferences) {
  const std::size_t rows = 3, d = 7;
  const double eps = 1e-5, h = 1e-6;
  test_support::UniformVectors random(20261201);
  std::vector<double> a = random(rows * d), b = random(rows * d), gamma = random(d), beta = random(d);
  const std::vector<double> w_y = random(rows * d), w_s = random(rows * d);

  std::vector<double> s(rows * d), y(rows * d), mean(rows), rstd(rows), ds(rows * d), dgamma(d), dbeta(d);
  residual_layernorm_forward_host(a.data(), b.data(), gamma.data(), beta.data(), rows, d, eps, s.data(), y.data(),
                                  mean.data(), rstd.data());
  layernorm_backward_host(w_y.data(), s.data(), gamma.data(), mean.data(), rstd.data(), w_s.data(), rows, d, ds.data(),
                          dgamma.data(), dbeta.data());

  auto loss = [&] { return weighted_loss(a, b, gamma, beta, w_y, w_s, rows, d, eps); };
  auto central = [&](std::vector<double>& x, std::size_t i) { return test_support::central_difference(loss, x, i, h); };
  for (std::size_t i = 0; i < rows * d; ++i) {
    EXPECT_NEAR(ds[i], central(a, i), 1e-7) << "a " << i;  // ds is the gradient of a and of b
    EXPECT_NEAR(ds[i], central(b, i), 1e-7) << "b " << i;
  }
  for (std::size_t c = 0; c < d; ++c) {
    EXPECT_NEAR(dgamma[c], central(gamma, c), 1e-7) << "gamma " << c;
    EXPECT_NEAR(dbeta[c], central(beta, c), 1e-7) << "beta " << c;
  }
}

}  // namespace wflops::kernels
