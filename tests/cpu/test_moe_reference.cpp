// The CPU reference of the MoE layer: routing rules and tie-breaks, a case worked out by hand,
// expert choice balanced by construction, an expert with no token and one with all of them, and
// its gradients against finite differences (x, router, both expert projections).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "reference/moe_reference.hpp"

namespace {

using namespace wflops::moe;

Inputs random_inputs(const Dims& dims, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const long n = dims.experts(), f = dims.hidden();
  auto fill = [&](long count) {
    std::vector<double> v(static_cast<std::size_t>(count));
    for (double& x : v) x = u(rng);
    return v;
  };
  return {fill(dims.T * dims.d), fill(n * dims.d), fill(n * f * dims.d), fill(n * dims.d * f), fill(dims.T * dims.d)};
}

double loss(const Dims& dims, const Inputs& in) {
  const Result r = reference(dims, in);
  double l = 0;
  for (std::size_t i = 0; i < r.y.size(); ++i) l += r.y[i] * in.dy[i];
  return l;
}

TEST(MoeReference, TieBreaks) {
  const double p[] = {0.2, 0.5, 0.5, 0.1};
  EXPECT_EQ(top_k_experts(p, 4, 2), (std::vector<long>{1, 2}));
  EXPECT_EQ(top_k_experts(p, 4, 3), (std::vector<long>{1, 2, 0}));
  // Expert choice over 4 tokens of 2 experts (probs[t * 2 + e]); expert 1 sees 0.3, 0.7, 0.3, 0.7.
  const double g[] = {0.7, 0.3, 0.3, 0.7, 0.7, 0.3, 0.3, 0.7};
  EXPECT_EQ(expert_choice_tokens(g, 4, 2, 1, 2), (std::vector<long>{1, 3}));
  EXPECT_EQ(expert_choice_tokens(g, 4, 2, 1, 3), (std::vector<long>{0, 1, 3}));  // tie 0 vs 2: token 0
  EXPECT_EQ(expert_choice_tokens(g, 4, 2, 0, 1), (std::vector<long>{0}));
}

TEST(MoeReference, GeluValues) {
  // tanh approximation: gelu(1) = 0.5 (1 + tanh(0.7978845608 * 1.044715)) = 0.8411919906.
  EXPECT_NEAR(gelu(1.0), 0.8411919906, 1e-9);
  EXPECT_NEAR(gelu(-1.0), -0.1588080094, 1e-9);
  EXPECT_DOUBLE_EQ(gelu(0.0), 0.0);
  EXPECT_NEAR(gelu_derivative(0.0), 0.5, 1e-15);
  EXPECT_NEAR(gelu_derivative(1.0), (gelu(1.0 + 1e-6) - gelu(1.0 - 1e-6)) / 2e-6, 1e-8);
}

// d = 8, E = 2, G = 1, T = 4, token choice. Router weights 0: both probabilities 0.5, the tie goes
// to expert 0, which takes every token (expert 1 takes none). Expert 0 copies x[0..7] into its
// hidden units and back out: y[t] = 0.5 * gelu(x[t]).
TEST(MoeReference, HandComputedCase) {
  const Dims dims{8, 2, 1, 4, Routing::token_choice};
  const long d = 8, f = 32;
  Inputs in;
  in.x.assign(4 * d, 0.0);
  for (long t = 0; t < 4; ++t) {
    in.x[t * d + t] = 1.0;
    in.x[t * d + t + 4] = -1.0;
  }
  in.wr.assign(2 * d, 0.0);
  in.w1.assign(2 * f * d, 0.0);
  in.w2.assign(2 * d * f, 0.0);
  for (long i = 0; i < d; ++i) {
    in.w1[i * d + i] = 1.0;  // expert 0: h[i] = x[i]
    in.w2[i * f + i] = 1.0;  // expert 0: out[i] = gelu(h[i])
  }
  in.dy.assign(4 * d, 1.0);
  const Result r = reference(dims, in);
  EXPECT_EQ(r.expert_counts, (std::vector<long>{4, 0}));
  ASSERT_EQ(r.assignments.size(), 4u);
  for (long t = 0; t < 4; ++t) {
    EXPECT_EQ(r.assignments[t].token, t);
    EXPECT_DOUBLE_EQ(r.assignments[t].score, 0.5);
    for (long c = 0; c < d; ++c) {
      const double want = c == t ? 0.5 * 0.8411919906 : c == t + 4 ? 0.5 * -0.1588080094 : 0.0;
      EXPECT_NEAR(r.y[t * d + c], want, 1e-9) << "t " << t << " c " << c;
    }
  }
  // Expert 1 got no token: no gradient reaches its weights.
  for (long i = f * d; i < 2 * f * d; ++i) EXPECT_EQ(r.dw1[i], 0.0);
  for (long i = d * f; i < 2 * d * f; ++i) EXPECT_EQ(r.dw2[i], 0.0);
  EXPECT_DOUBLE_EQ(load_imbalance(r.expert_counts), 2.0);
}

TEST(MoeReference, ExpertChoiceIsBalanced) {
  const Dims dims{8, 2, 2, 512, Routing::expert_choice};  // 4 experts, 128 tokens per group each
  const Result r = reference(dims, random_inputs(dims, 7));
  EXPECT_EQ(r.expert_counts, (std::vector<long>(4, 256)));  // T / E
  EXPECT_EQ(r.assignments.size(), 1024u);                   // T * G
  EXPECT_DOUBLE_EQ(load_imbalance(r.expert_counts), 1.0);
  for (std::size_t i = 1; i < r.assignments.size(); ++i) {  // expert-contiguous, tokens in order
    const Assignment& a = r.assignments[i - 1];
    const Assignment& b = r.assignments[i];
    EXPECT_TRUE(a.expert < b.expert || (a.expert == b.expert && a.token < b.token));
  }
}

// Token choice with a constant feature (x[:, 7] = 1) on which only expert 2 has a router weight:
// expert 2 takes all tokens, the others none.
TEST(MoeReference, OneExpertTakesAllTokens) {
  const Dims dims{8, 4, 1, 16, Routing::token_choice};
  Inputs in = random_inputs(dims, 11);
  for (long t = 0; t < dims.T; ++t) in.x[t * 8 + 7] = 1.0;
  for (long e = 0; e < 4; ++e) in.wr[e * 8 + 7] = e == 2 ? 64.0 : 0.0;
  const Result r = reference(dims, in);
  EXPECT_EQ(r.expert_counts, (std::vector<long>{0, 0, 16, 0}));
  EXPECT_DOUBLE_EQ(load_imbalance(r.expert_counts), 4.0);
  for (const Assignment& a : r.assignments) EXPECT_EQ(a.expert, 2);
}

void check_gradients(const Dims& dims, unsigned seed, long x_stride) {
  const Inputs in = random_inputs(dims, seed);
  const Result r = reference(dims, in);
  const double eps = 1e-6;
  auto check = [&](std::vector<double> Inputs::*field, const std::vector<double>& grad, long stride, const char* what) {
    const std::vector<double>& values = in.*field;
    for (std::size_t i = 0; i < values.size(); i += static_cast<std::size_t>(stride)) {
      Inputs plus = in, minus = in;
      (plus.*field)[i] += eps;
      (minus.*field)[i] -= eps;
      const double fd = (loss(dims, plus) - loss(dims, minus)) / (2 * eps);
      EXPECT_NEAR(grad[i], fd, 1e-6 * (1 + std::abs(fd))) << what << "[" << i << "]";
    }
  };
  check(&Inputs::x, r.dx, x_stride, "dx");
  check(&Inputs::wr, r.dwr, 1, "dwr");
  check(&Inputs::w1, r.dw1, 5, "dw1");
  check(&Inputs::w2, r.dw2, 5, "dw2");
}

TEST(MoeReference, GradientsMatchFiniteDifferencesTokenChoice) {
  check_gradients(Dims{8, 2, 2, 3, Routing::token_choice}, 3, 1);
}

TEST(MoeReference, GradientsMatchFiniteDifferencesExpertChoice) {
  check_gradients(Dims{8, 4, 1, 256, Routing::expert_choice}, 5, 37);
}

// The router inputs the GPU workload draws (x ~ U(-1, 1), wr ~ U(-b, b), b = router_weight_bound(d)),
// simulated on the host with the same distributions: the logits' standard deviation is near 1 and
// the routing scores are spread (the top expert's probability far from 1), where router weights
// from U(-1, 1) would give logits spread by sqrt(d)/3 and one-hot scores. (The GPU rounds the
// weights to bf16, a relative change under 2^-8 per value: no visible change in the spread.)
TEST(MoeReference, RouterLogitsHaveUnitSpread) {
  EXPECT_DOUBLE_EQ(router_weight_bound(2048), 3.0 / std::sqrt(2048.0));
  EXPECT_DOUBLE_EQ(router_weight_bound(9), 1.0);
  const long tokens = 128, experts = 64;
  for (long d : {768L, 2048L, 4096L}) {
    std::mt19937_64 rng(static_cast<unsigned long>(d));
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    std::vector<double> x(static_cast<std::size_t>(tokens * d)), u_wr(static_cast<std::size_t>(experts * d));
    for (double& v : x) v = u(rng);
    for (double& v : u_wr) v = u(rng);
    // Spread of the logits and mean top-1 probability, with the router weights U(-1, 1) scaled by `bound`.
    const auto stats = [&](double bound) {
      double sum = 0, sum2 = 0, top1 = 0;
      std::vector<double> logits(static_cast<std::size_t>(experts)), probs(logits.size());
      for (long t = 0; t < tokens; ++t) {
        for (long e = 0; e < experts; ++e) {
          double acc = 0;
          for (long j = 0; j < d; ++j) acc += x[t * d + j] * bound * u_wr[e * d + j];
          logits[e] = acc;
          sum += acc;
          sum2 += acc * acc;
        }
        softmax(logits.data(), experts, probs.data());
        top1 += *std::max_element(probs.begin(), probs.end());
      }
      const double n = static_cast<double>(tokens * experts), mean = sum / n;
      return std::make_pair(std::sqrt(sum2 / n - mean * mean), top1 / static_cast<double>(tokens));
    };
    const auto [std_dev, top1] = stats(router_weight_bound(d));
    EXPECT_GT(std_dev, 0.9) << "d = " << d;
    EXPECT_LT(std_dev, 1.1) << "d = " << d;
    EXPECT_LT(top1, 0.3) << "d = " << d;  // about 0.1 with 64 experts
    // What the weights drawn like every other input would give: sqrt(d)/3 (9 to 21), one-hot scores.
    const auto [wide_std, wide_top1] = stats(1.0);
    EXPECT_NEAR(wide_std / (std::sqrt(static_cast<double>(d)) / 3), 1.0, 0.1) << "d = " << d;
    EXPECT_GT(wide_top1, 0.8) << "d = " << d;
  }
}

TEST(MoeReference, RefusesBadDims) {
  EXPECT_NE(dims_error(Dims{100, 8, 4, 256, Routing::expert_choice}), "");
  EXPECT_NE(dims_error(Dims{8, 3, 1, 256, Routing::expert_choice}), "");  // 256 % 3
  EXPECT_NE(dims_error(Dims{8, 2, 1, 100, Routing::expert_choice}), "");  // T % 256
  EXPECT_EQ(dims_error(Dims{8, 2, 1, 100, Routing::token_choice}), "");
  EXPECT_THROW(reference(Dims{100, 8, 4, 256, Routing::expert_choice}, Inputs{}), std::runtime_error);
}

}  // namespace
