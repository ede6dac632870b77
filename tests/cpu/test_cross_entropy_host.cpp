// The host reference of the fused softmax + cross-entropy (kernels/model/cross_entropy.cuh): losses and
// gradients by hand, invariance to a shift of the logits (the max subtraction that keeps exp from
// overflowing), an ignored token, and the gradient against central finite differences of the loss.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include "model/cross_entropy.cuh"

namespace wflops::kernels {

TEST(CrossEntropyHost, ByHand) {
  // Two equal logits: loss ln 2, softmax [1/2, 1/2], gradient [1/2 - 1, 1/2] times the scale.
  std::vector<double> z = {0, 0}, dz(2);
  EXPECT_NEAR(softmax_cross_entropy_host(z.data(), 2, 0, 0.25, dz.data()), std::log(2.0), 1e-15);
  EXPECT_NEAR(dz[0], -0.125, 1e-15);
  EXPECT_NEAR(dz[1], 0.125, 1e-15);
  // z = [0, ln 3]: softmax [1/4, 3/4]; target 1 costs -ln(3/4), target 0 costs ln 4.
  z = {0, std::log(3.0)};
  EXPECT_NEAR(softmax_cross_entropy_host(z.data(), 2, 1, 1, dz.data()), std::log(4.0 / 3.0), 1e-15);
  EXPECT_NEAR(dz[0], 0.25, 1e-15);
  EXPECT_NEAR(dz[1], -0.25, 1e-15);
  EXPECT_NEAR(softmax_cross_entropy_host(z.data(), 2, 0, 1, nullptr), std::log(4.0), 1e-15);
}

TEST(CrossEntropyHost, UniformLogitsCostLogV) {
  // What the model step expects at initialisation: near-uniform logits give a loss near ln V.
  const std::size_t vocab = 50257;
  std::vector<double> z(vocab, 0.125), dz(vocab);
  EXPECT_NEAR(softmax_cross_entropy_host(z.data(), vocab, 17, 1, dz.data()), std::log(50257.0), 1e-12);
  EXPECT_NEAR(dz[0], 1.0 / 50257, 1e-15);
  EXPECT_NEAR(dz[17], 1.0 / 50257 - 1, 1e-15);
}

TEST(CrossEntropyHost, ShiftInvariantAndIgnoredTokens) {
  // exp(1000) overflows a double; the reference subtracts the maximum first.
  std::vector<double> z = {1.5, -0.5, 3, 0.25}, shifted(z), dz(4), dz_shifted(4);
  for (double& x : shifted) x += 1000;
  const double loss = softmax_cross_entropy_host(z.data(), 4, 2, 1, dz.data());
  EXPECT_NEAR(softmax_cross_entropy_host(shifted.data(), 4, 2, 1, dz_shifted.data()), loss, 1e-12);
  double sum = 0;
  for (std::size_t j = 0; j < 4; ++j) {
    EXPECT_NEAR(dz_shifted[j], dz[j], 1e-12) << j;
    sum += dz[j];
  }
  EXPECT_NEAR(sum, 0, 1e-15);  // softmax sums to one, the one-hot too
  // A negative target: loss 0, gradient 0.
  EXPECT_EQ(softmax_cross_entropy_host(z.data(), 4, -100, 1, dz.data()), 0.0);
  for (double g : dz) EXPECT_EQ(g, 0.0);
  // A target past the vocabulary is ignored too (the kernel cannot report it).
  dz.assign(4, 1.0);
  EXPECT_EQ(softmax_cross_entropy_host(z.data(), 4, 4, 1, dz.data()), 0.0);
  for (double g : dz) EXPECT_EQ(g, 0.0);
}

TEST(CrossEntropyHost, GradientMatchesFiniteDifferences) {
  const std::size_t vocab = 11;
  const double scale = 0.375, h = 1e-6;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> n(0, 3);
  std::vector<double> z(vocab), dz(vocab);
  for (double& x : z) x = n(rng);
  for (int target : {0, 4, 10}) {
    softmax_cross_entropy_host(z.data(), vocab, target, scale, dz.data());
    for (std::size_t j = 0; j < vocab; ++j) {
      const double keep = z[j];
      z[j] = keep + h;
      const double up = softmax_cross_entropy_host(z.data(), vocab, target, 1, nullptr);
      z[j] = keep - h;
      const double down = softmax_cross_entropy_host(z.data(), vocab, target, 1, nullptr);
      z[j] = keep;
      EXPECT_NEAR(dz[j], scale * (up - down) / (2 * h), 1e-8) << "target " << target << " logit " << j;
    }
  }
}

}  // namespace wflops::kernels
