// The fp64 MLP reference (src/reference/mlp_reference.hpp): a tiny step computed by hand (with ReLU at an
// exact 0 pre-activation), a finite-difference check of its gradients, and agreement of its
// activations with the ones the kernels use (kernels/elementwise/activation.cuh's host versions).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "elementwise/activation.cuh"
#include "reference/mlp_reference.hpp"

namespace wflops::mlp_ref {

namespace {

// An MLP with bias and residual of width d, hidden width d_ff and T tokens; its tensors are the
// caller's to fill.
MlpHost residual_mlp(long d, long d_ff, long tokens, Act act) {
  MlpHost m;
  m.d = d, m.d_ff = d_ff, m.tokens = tokens, m.act = act, m.residual = true;
  return m;
}

// d = 2, d_ff = 3, T = 2, ReLU + bias + residual. Pre-activations h = [[1, 0, 0], [-1, 0.5, -3.5]]:
// two exact zeros in the first token, whose ReLU derivative is 0.
MlpHost hand_case() {
  MlpHost m = residual_mlp(2, 3, 2, Act::relu);
  m.x = {1, 2, -1, 0.5f};
  m.w1 = {1, 0, 0.5f, -1, 1, 1};
  m.b1 = {0, 1.5f, -3};
  m.w2 = {1, 2, 3, -1, 0, 1};
  m.b2 = {0.5f, -0.5f};
  m.dy = {1, -1, 0.5f, 2};
  return m;
}

void expect_vec(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_DOUBLE_EQ(got[i], want[i]) << "element " << i;
}

}  // namespace

TEST(MlpReference, TinyStepByHand) {
  const MlpHost m = hand_case();
  const TokenRow r0 = token_row(m, 0), r1 = token_row(m, 1);
  expect_vec(r0.h, {1, 0, 0});
  expect_vec(r0.a, {1, 0, 0});
  expect_vec(r0.y, {2.5, 0.5});  // a W2^T = [1, -1], + b2 = [1.5, -1.5], + x = [2.5, 0.5]
  expect_vec(r0.da, {2, 2, 2});  // dy W2 = 1 * [1, 2, 3] - 1 * [-1, 0, 1]
  expect_vec(r0.dh, {2, 0, 0});  // ReLU'(0) = 0
  expect_vec(r0.dx, {3, -1});    // dh W1 = [2, 0], + dy
  expect_vec(r1.h, {-1, 0.5, -3.5});
  expect_vec(r1.y, {0.5, 0});  // a = [0, 0.5, 0]: [1, 0] + [0.5, -0.5] + [-1, 0.5]
  expect_vec(r1.da, {-1.5, 1, 3.5});
  expect_vec(r1.dh, {0, 1, 0});
  expect_vec(r1.dx, {1, 1});  // [0.5, -1] + [0.5, 2]
  // dW2 = dy^T a: row 0 = 1 * [1, 0, 0] + 0.5 * [0, 0.5, 0]; row 1 = -1 * [1, 0, 0] + 2 * [0, 0.5, 0].
  expect_vec(dw2_column(m, 0, {0, 1}), {1, -1});
  expect_vec(dw2_column(m, 1, {0, 1}), {0.25, 1});
  expect_vec(dw2_column(m, 2, {0, 1}), {0, 0});
  expect_vec(db2(m), {1.5, 1});
  // dW1 = dh^T x: row 0 = 2 * [1, 2]; row 1 = 1 * [-1, 0.5]; row 2 = 0.
  double db1 = -1;
  expect_vec(dw1_row(m, 0, {0, 1}, &db1), {2, 4});
  EXPECT_DOUBLE_EQ(db1, 2);
  expect_vec(dw1_row(m, 1, {0, 1}, &db1), {-1, 0.5});
  EXPECT_DOUBLE_EQ(db1, 1);
  expect_vec(dw1_row(m, 2, {0, 1}, &db1), {0, 0});
  EXPECT_DOUBLE_EQ(db1, 0);
  // Without the residual y and dx lose x and dy.
  MlpHost plain = hand_case();
  plain.residual = false;
  expect_vec(token_row(plain, 0).y, {1.5, -1.5});
  expect_vec(token_row(plain, 0).dx, {2, 0});
}

// Central differences of L = sum_t dy_t . y_t against the reference's gradients, GELU + bias +
// residual. Values are multiples of 1/64 and the step 2^-12, so every perturbed float is exact.
TEST(MlpReference, GradientsMatchFiniteDifferences) {
  MlpHost m = residual_mlp(3, 4, 3, Act::gelu);
  auto fill = [](std::vector<float>& v, std::size_t n, int seed) {
    v.resize(n);
    for (std::size_t i = 0; i < n; ++i)
      v[i] = static_cast<float>(((seed * 37 + static_cast<int>(i) * 53) % 97) - 48) / 64.0f;
  };
  fill(m.x, 9, 1);
  fill(m.dy, 9, 2);
  fill(m.w1, 12, 3);
  fill(m.w2, 12, 4);
  fill(m.b1, 4, 5);
  fill(m.b2, 3, 6);
  const double eps = 1.0 / 4096;
  auto numeric = [&](float& p) {
    const float saved = p;
    p = saved + static_cast<float>(eps);
    const double up = loss(m);
    p = saved - static_cast<float>(eps);
    const double down = loss(m);
    p = saved;
    return (up - down) / (2 * eps);
  };
  const double tol = 1e-5;
  for (long i = 0; i < m.d_ff; ++i) {
    double db1 = 0;
    const std::vector<double> row = dw1_row(m, i, {0, 1, 2}, &db1);
    for (long k = 0; k < m.d; ++k) EXPECT_NEAR(row[k], numeric(m.w1[i * m.d + k]), tol) << "dW1 " << i << "," << k;
    EXPECT_NEAR(db1, numeric(m.b1[i]), tol) << "db1 " << i;
    const std::vector<double> col = dw2_column(m, i, {0, 1, 2});
    for (long k = 0; k < m.d; ++k) EXPECT_NEAR(col[k], numeric(m.w2[k * m.d_ff + i]), tol) << "dW2 " << k << "," << i;
  }
  const std::vector<double> b2 = db2(m);
  for (long k = 0; k < m.d; ++k) EXPECT_NEAR(b2[k], numeric(m.b2[k]), tol) << "db2 " << k;
  for (long t = 0; t < m.tokens; ++t) {
    const std::vector<double> dx = token_row(m, t).dx;
    for (long k = 0; k < m.d; ++k) EXPECT_NEAR(dx[k], numeric(m.x[t * m.d + k]), tol) << "dx " << t << "," << k;
  }
}

TEST(MlpReference, ActivationsByHand) {
  EXPECT_DOUBLE_EQ(activation(Act::relu, -2), 0);
  EXPECT_DOUBLE_EQ(activation(Act::relu, 3), 3);
  EXPECT_DOUBLE_EQ(activation_derivative(Act::relu, 0), 0);
  EXPECT_DOUBLE_EQ(activation_derivative(Act::relu, 1e-30), 1);
  EXPECT_DOUBLE_EQ(activation(Act::none, -2), -2);
  EXPECT_DOUBLE_EQ(activation(Act::gelu, 0), 0);
  EXPECT_DOUBLE_EQ(activation_derivative(Act::gelu, 0), 0.5);
  // gelu(1) = 0.5 (1 + tanh(sqrt(2/pi) * 1.044715)) = 0.8411919906082768 (tanh approximation)
  EXPECT_NEAR(activation(Act::gelu, 1), 0.8411919906082768, 1e-15);
  // Far out GELU is the identity (x > 0) or 0 (x < 0).
  EXPECT_NEAR(activation(Act::gelu, 10), 10, 1e-12);
  EXPECT_NEAR(activation(Act::gelu, -10), 0, 1e-12);
}

TEST(MlpReference, ActivationsAgreeWithTheKernelsHostVersions) {
  for (double x : {-6.0, -2.5, -1.0, -0.25, 0.0, 1e-3, 0.5, 1.0, 3.0, 7.0}) {
    EXPECT_NEAR(activation(Act::gelu, x), kernels::activation_host(kernels::Activation::gelu, x), 1e-12) << x;
    EXPECT_NEAR(activation_derivative(Act::gelu, x), kernels::activation_derivative_host(kernels::Activation::gelu, x),
                1e-12)
        << x;
    EXPECT_EQ(activation(Act::relu, x), kernels::activation_host(kernels::Activation::relu, x)) << x;
    EXPECT_EQ(activation_derivative(Act::relu, x), kernels::activation_derivative_host(kernels::Activation::relu, x))
        << x;
  }
}

}  // namespace wflops::mlp_ref
