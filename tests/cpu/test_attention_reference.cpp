// The fp64 attention reference: a hand-computed case, the causal first row, and its gradients
// against finite differences of the forward.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "reference/attention_reference.hpp"

namespace wflops {
namespace {

std::vector<double> random_values(std::size_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> x(n);
  for (double& e : x) e = u(rng);
  return x;
}

TEST(AttentionReference, HandComputedTinyCase) {
  // s = 2, d = 1, scale 1: q = [1, 1], k = [0, ln 3] -> each row's scores are [0, ln 3],
  // P = [1/4, 3/4]; v = [2, 6] -> O = 2/4 + 18/4 = 5, L = ln(1 + 3) = ln 4.
  const AttentionProblem p{2, 1, false, 1.0};
  const std::vector<double> q = {1, 1}, k = {0, std::log(3.0)}, v = {2, 6};
  std::vector<double> o(2), lse(2);
  attention_forward_reference(p, q.data(), k.data(), v.data(), o.data(), lse.data());
  EXPECT_NEAR(o[0], 5.0, 1e-12);
  EXPECT_NEAR(o[1], 5.0, 1e-12);
  EXPECT_NEAR(lse[0], std::log(4.0), 1e-12);
  // Causal: row 0 sees only key 0 (O = v0 = 2, L = 0); row 1 is unchanged.
  const AttentionProblem c{2, 1, true, 1.0};
  attention_forward_reference(c, q.data(), k.data(), v.data(), o.data(), lse.data());
  EXPECT_NEAR(o[0], 2.0, 1e-12);
  EXPECT_NEAR(lse[0], 0.0, 1e-12);
  EXPECT_NEAR(o[1], 5.0, 1e-12);
  EXPECT_NEAR(lse[1], std::log(4.0), 1e-12);
}

TEST(AttentionReference, CausalFirstRowIsFirstValueRow) {
  std::mt19937_64 rng(7);
  const AttentionProblem p{9, 4, true, 0.5};
  const auto q = random_values(36, rng), k = random_values(36, rng), v = random_values(36, rng);
  std::vector<double> o(36), lse(9);
  attention_forward_reference(p, q.data(), k.data(), v.data(), o.data(), lse.data());
  for (int c = 0; c < 4; ++c) EXPECT_NEAR(o[c], v[c], 1e-12);
  EXPECT_NEAR(lse[0], 0.5 * (q[0] * k[0] + q[1] * k[1] + q[2] * k[2] + q[3] * k[3]), 1e-12);
  // Rows sampled alone equal the same rows of the whole slice.
  std::vector<double> o_rows(8), lse_rows(2);
  attention_forward_rows(p, q.data(), k.data(), v.data(), {3, 8}, o_rows.data(), lse_rows.data());
  for (int c = 0; c < 4; ++c) {
    EXPECT_DOUBLE_EQ(o_rows[c], o[3 * 4 + c]);
    EXPECT_DOUBLE_EQ(o_rows[4 + c], o[8 * 4 + c]);
  }
  EXPECT_DOUBLE_EQ(lse_rows[1], lse[8]);
}

// loss = sum(O * G): its gradient with respect to Q, K, V is what the backward computes with dO = G.
double loss(const AttentionProblem& p, const std::vector<double>& q, const std::vector<double>& k,
            const std::vector<double>& v, const std::vector<double>& g) {
  std::vector<double> o(q.size()), lse(static_cast<std::size_t>(p.seq));
  attention_forward_reference(p, q.data(), k.data(), v.data(), o.data(), lse.data());
  double sum = 0;
  for (std::size_t i = 0; i < o.size(); ++i) sum += o[i] * g[i];
  return sum;
}

void check_gradients(bool causal) {
  std::mt19937_64 rng(causal ? 11 : 12);
  const AttentionProblem p{5, 3, causal, 1.0 / std::sqrt(3.0)};
  const std::size_t n = 15;
  auto q = random_values(n, rng), k = random_values(n, rng), v = random_values(n, rng);
  const auto g = random_values(n, rng);
  std::vector<double> dq(n), dk(n), dv(n);
  attention_backward_reference(p, q.data(), k.data(), v.data(), g.data(), dq.data(), dk.data(), dv.data());
  const double h = 1e-6;
  for (std::vector<double>* x : {&q, &k, &v}) {
    const std::vector<double>& grad = x == &q ? dq : x == &k ? dk : dv;
    for (std::size_t i = 0; i < n; ++i) {
      const double keep = (*x)[i];
      (*x)[i] = keep + h;
      const double up = loss(p, q, k, v, g);
      (*x)[i] = keep - h;
      const double down = loss(p, q, k, v, g);
      (*x)[i] = keep;
      EXPECT_NEAR(grad[i], (up - down) / (2 * h), 1e-7) << (x == &q ? "dQ" : x == &k ? "dK" : "dV") << " " << i;
    }
  }
  // Causal: the last key is seen only by the last query, so dK/dV of the last key come from one row.
  if (causal) {
    for (int c = 0; c < 3; ++c) EXPECT_NE(dv[12 + c], 0.0);
  }
}

TEST(AttentionReference, GradientsMatchFiniteDifferences) { check_gradients(false); }
TEST(AttentionReference, CausalGradientsMatchFiniteDifferences) { check_gradients(true); }

}  // namespace
}  // namespace wflops
