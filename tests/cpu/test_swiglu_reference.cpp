// The gated MLP (SwiGLU): silu and its derivative by hand, the fp64 reference's gated step by hand
// and against finite differences, the kernels' host versions against the reference, and the
// registrations (names, d_ff = swiglu_hidden(d), FLOPs, baselines, suites).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda/mlp_step.hpp"
#include "elementwise/swiglu.cuh"
#include "model/flops.hpp"
#include "reference/mlp_reference.hpp"
#include "registered_benchmarks.hpp"
#include "registry.hpp"

namespace wflops {

namespace {

// silu(1) = 1 / (1 + e^-1); silu'(1) = sigmoid(1) (1 + 1 - sigmoid(1)).
constexpr double kSilu1 = 0.7310585786300049;
constexpr double kSiluDerivative1 = 0.9276705118714869;

const Registry& all_benchmarks() { return testing::registered_benchmarks(); }

// d = 2, d_ff = 1, T = 2, W1 = [gate row; up row]. Token 0: g = 0, u = 3 (silu(0) = 0,
// silu'(0) = 0.5); token 1: g = 1, u = 1.
mlp_ref::MlpHost hand_case() {
  mlp_ref::MlpHost m;
  m.d = 2;
  m.d_ff = 1;
  m.tokens = 2;
  m.gated = true;
  m.x = {1, 2, 1, 0};
  m.w1 = {1, -0.5f, 1, 1};
  m.w2 = {2, 1};
  m.dy = {1, -1, 0.5f, 0.5f};
  return m;
}

}  // namespace

TEST(SwigluReference, SiluByHand) {
  for (auto silu : {&mlp_ref::silu, &kernels::silu_host}) {
    EXPECT_NEAR(silu(1), 0.7310585786, 1e-10);
    EXPECT_NEAR(silu(1), kSilu1, 1e-15);
    EXPECT_NEAR(silu(-1), -0.2689414213699951, 1e-15);  // silu(-x) = silu(x) - x
    EXPECT_DOUBLE_EQ(silu(0), 0);
    EXPECT_NEAR(silu(30), 30, 1e-10);  // far out: the identity, or 0
    EXPECT_NEAR(silu(-30), 0, 1e-10);
    EXPECT_TRUE(std::isfinite(silu(-1000)));  // e^1000 overflows to inf: silu is -0, not NaN
  }
  for (auto derivative : {&mlp_ref::silu_derivative, &kernels::silu_derivative_host}) {
    EXPECT_DOUBLE_EQ(derivative(0), 0.5);
    EXPECT_NEAR(derivative(1), kSiluDerivative1, 1e-15);
    EXPECT_NEAR(derivative(-2), -0.09078424878489547, 1e-15);  // negative below about -1.28
    EXPECT_TRUE(std::isfinite(derivative(-1000)));
  }
}

TEST(SwigluReference, KernelHostVersionsAgreeWithTheReference) {
  for (double g : {-7.0, -2.5, -1.0, -0.125, 0.0, 1e-3, 0.5, 1.0, 4.0}) {
    EXPECT_NEAR(kernels::silu_host(g), mlp_ref::silu(g), 1e-15) << g;
    EXPECT_NEAR(kernels::silu_derivative_host(g), mlp_ref::silu_derivative(g), 1e-15) << g;
    const double u = 0.75 - g, da = 1.5;
    EXPECT_NEAR(kernels::swiglu_host(g, u), mlp_ref::silu(g) * u, 1e-15) << g;
    double dg = 0, du = 0;
    kernels::swiglu_backward_host(da, g, u, dg, du);
    EXPECT_NEAR(dg, da * u * mlp_ref::silu_derivative(g), 1e-15) << g;
    EXPECT_NEAR(du, da * mlp_ref::silu(g), 1e-15) << g;
  }
  double dg = -1, du = -1;
  kernels::swiglu_backward_host(2, 0, 3, dg, du);  // silu'(0) = 0.5, silu(0) = 0
  EXPECT_DOUBLE_EQ(dg, 3);
  EXPECT_DOUBLE_EQ(du, 0);
}

TEST(SwigluReference, GatedStepByHand) {
  const mlp_ref::MlpHost m = hand_case();
  const mlp_ref::TokenRow r0 = mlp_ref::token_row(m, 0), r1 = mlp_ref::token_row(m, 1);
  ASSERT_EQ(r0.h.size(), 2u);
  ASSERT_EQ(r0.dh.size(), 2u);
  EXPECT_DOUBLE_EQ(r0.h[0], 0);
  EXPECT_DOUBLE_EQ(r0.h[1], 3);
  EXPECT_DOUBLE_EQ(r0.a[0], 0);  // silu(0) * 3
  EXPECT_DOUBLE_EQ(r0.y[0], 0);
  EXPECT_DOUBLE_EQ(r0.da[0], 1);    // dy W2 = 1 * 2 - 1 * 1
  EXPECT_DOUBLE_EQ(r0.dh[0], 1.5);  // dg = da u silu'(0) = 1 * 3 * 0.5
  EXPECT_DOUBLE_EQ(r0.dh[1], 0);    // du = da silu(0)
  EXPECT_DOUBLE_EQ(r0.dx[0], 1.5);  // dg [1, -0.5] + du [1, 1]
  EXPECT_DOUBLE_EQ(r0.dx[1], -0.75);
  // Token 1: g = u = 1, a = silu(1), y = a [2, 1], da = 0.5 * 2 + 0.5 * 1 = 1.5.
  const double dg1 = 1.5 * kSiluDerivative1, du1 = 1.5 * kSilu1;
  EXPECT_NEAR(r1.a[0], kSilu1, 1e-15);
  EXPECT_NEAR(r1.y[0], 2 * kSilu1, 1e-15);
  EXPECT_NEAR(r1.y[1], kSilu1, 1e-15);
  EXPECT_DOUBLE_EQ(r1.da[0], 1.5);
  EXPECT_NEAR(r1.dh[0], dg1, 1e-15);
  EXPECT_NEAR(r1.dh[1], du1, 1e-15);
  EXPECT_NEAR(r1.dx[0], dg1 + du1, 1e-15);
  EXPECT_NEAR(r1.dx[1], -0.5 * dg1 + du1, 1e-15);
  // dW1 = dh^T x over both tokens: gate row [1.5, 3] + dg1 [1, 0], up row 0 + du1 [1, 0].
  const std::vector<double> gate = mlp_ref::dw1_row(m, 0, {0, 1}, nullptr);
  const std::vector<double> up = mlp_ref::dw1_row(m, 1, {0, 1}, nullptr);
  EXPECT_NEAR(gate[0], 1.5 + dg1, 1e-15);
  EXPECT_DOUBLE_EQ(gate[1], 3);
  EXPECT_NEAR(up[0], du1, 1e-15);
  EXPECT_DOUBLE_EQ(up[1], 0);
  // dW2 = dy^T a: a = [0, silu(1)], dy[:, k] = [1, 0.5] and [-1, 0.5].
  const std::vector<double> dw2 = mlp_ref::dw2_column(m, 0, {0, 1});
  EXPECT_NEAR(dw2[0], 0.5 * kSilu1, 1e-15);
  EXPECT_NEAR(dw2[1], 0.5 * kSilu1, 1e-15);
}

// Central differences of L = sum_t dy_t . y_t against the gated reference's gradients, for W1's
// gate and up rows, W2 and x. Values are multiples of 1/64 and the step 2^-12, so every perturbed
// float is exact.
TEST(SwigluReference, GradientsMatchFiniteDifferences) {
  mlp_ref::MlpHost m;
  m.d = 3;
  m.d_ff = 4;
  m.tokens = 3;
  m.gated = true;
  auto fill = [](std::vector<float>& v, std::size_t n, int seed) {
    v.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      v[i] = static_cast<float>(((seed * 41 + static_cast<int>(i) * 59) % 101) - 50) / 64.0f;
    }
  };
  fill(m.x, 9, 1);
  fill(m.dy, 9, 2);
  fill(m.w1, 24, 3);  // [2 d_ff, d]
  fill(m.w2, 12, 4);  // [d, d_ff]
  const double eps = 1.0 / 4096;
  auto numeric = [&](float& p) {
    const float saved = p;
    p = saved + static_cast<float>(eps);
    const double plus = mlp_ref::loss(m);
    p = saved - static_cast<float>(eps);
    const double minus = mlp_ref::loss(m);
    p = saved;
    return (plus - minus) / (2 * eps);
  };
  const double tol = 1e-5;
  for (long i = 0; i < 2 * m.d_ff; ++i) {
    const std::vector<double> row = mlp_ref::dw1_row(m, i, {0, 1, 2}, nullptr);
    for (long k = 0; k < m.d; ++k) {
      EXPECT_NEAR(row[k], numeric(m.w1[i * m.d + k]), tol) << (i < m.d_ff ? "gate" : "up") << " dW1 " << i << "," << k;
    }
  }
  for (long j = 0; j < m.d_ff; ++j) {
    const std::vector<double> col = mlp_ref::dw2_column(m, j, {0, 1, 2});
    for (long k = 0; k < m.d; ++k) EXPECT_NEAR(col[k], numeric(m.w2[k * m.d_ff + j]), tol) << "dW2 " << k << "," << j;
  }
  for (long t = 0; t < m.tokens; ++t) {
    const std::vector<double> dx = mlp_ref::token_row(m, t).dx;
    for (long k = 0; k < m.d; ++k) EXPECT_NEAR(dx[k], numeric(m.x[t * m.d + k]), tol) << "dx " << t << "," << k;
  }
  // The per-column dh agrees with the per-row one (the check samples both ways).
  for (long i = 0; i < 2 * m.d_ff; ++i) {
    const std::vector<double> column = mlp_ref::dh_column(m, i);
    for (long t = 0; t < m.tokens; ++t) EXPECT_NEAR(column[t], mlp_ref::token_row(m, t).dh[i], 1e-14) << i << "," << t;
  }
}

TEST(SwigluVariants, DecodeAndRefuseWhatTheyCannotRun) {
  const auto fused = mlp_variant("fused_swiglu"), unfused = mlp_variant("unfused_swiglu");
  ASSERT_TRUE(fused && unfused);
  EXPECT_TRUE(fused->gated && fused->gate_fused);
  EXPECT_TRUE(unfused->gated && !unfused->gate_fused);
  for (const MlpVariant& v : {*fused, *unfused}) {
    EXPECT_FALSE(v.fused || v.bias || v.residual || v.mixed) << v.word;  // no cuBLASLt epilogue path
    EXPECT_EQ(mlp_unsupported_reason({v, DType::bf16, 64, 1003, 37, false}), "") << v.word;
  }
  MlpVariant with_bias = *fused;
  with_bias.bias = true;
  EXPECT_NE(mlp_unsupported_reason({with_bias, DType::bf16, 64, 256, 128, false}).find("SwiGLU"), std::string::npos);
  EXPECT_NE(mlp_unsupported_reason({*fused, DType::fp32, 64, 256, 128, false}), "");
  // 2 d_ff must fit cuBLAS's int.
  EXPECT_NE(mlp_unsupported_reason({*fused, DType::bf16, 64, 1L << 30, 128, false}), "");
}

TEST(SwigluRegistry, NamesFlopsBaselinesAndSuites) {
  EXPECT_DOUBLE_EQ(flops::swiglu_hidden(1600), 4288);
  EXPECT_DOUBLE_EQ(flops::swiglu_hidden(2048), 5504);  // 8 * 2048 / 3 = 5461.3 -> 86 * 64
  EXPECT_DOUBLE_EQ(flops::swiglu_hidden(4096), 10944);
  const BenchSpec* ref = all_benchmarks().find("mlp_step/fused_swiglu/bf16/d:1600/ff:4288/tok:8192");
  ASSERT_NE(ref, nullptr);
  EXPECT_DOUBLE_EQ(ref->flops, 1011666124800.0);  // 6 * 3 * 1600 * 4288 * 8192
  EXPECT_EQ(ref->baseline, "mlp_step/linear/bf16/d:1600/ff:6400/tok:8192");
  for (const char* suite : {"mlp", "quick"}) EXPECT_TRUE(ref->suites.count(suite)) << suite;
  EXPECT_NE(ref->label.find("20582400 weights"), std::string::npos) << ref->label;  // 3 * 1600 * 4288
  EXPECT_NE(ref->label.find("20480000"), std::string::npos) << ref->label;          // 2 * 1600 * 6400
  const BenchSpec* fwd = all_benchmarks().find("mlp_fwd/fused_swiglu/bf16/d:1600/ff:4288/tok:8192");
  ASSERT_NE(fwd, nullptr);
  EXPECT_DOUBLE_EQ(fwd->flops, 337222041600.0);  // 2 * 3 * 1600 * 4288 * 8192
  EXPECT_EQ(fwd->baseline, "mlp_fwd/linear/bf16/d:1600/ff:6400/tok:8192");
  EXPECT_FALSE(fwd->suites.count("quick"));
  const BenchSpec* unfused = all_benchmarks().find("mlp_step/unfused_swiglu/fp16/d:1600/ff:4288/tok:8192");
  ASSERT_NE(unfused, nullptr);
  EXPECT_EQ(unfused->baseline, "mlp_step/linear/fp16/d:1600/ff:6400/tok:8192");
  EXPECT_FALSE(unfused->suites.count("quick"));
  // Every size in both variants and dtypes, in the mlp suite (and so in full).
  int registered = 0;
  for (long h : {2048L, 4096L}) {
    const long ff = static_cast<long>(flops::swiglu_hidden(h));
    for (long tokens : {8192L, 32768L}) {
      for (const char* word : {"fused_swiglu", "unfused_swiglu"}) {
        for (const char* dtype : {"bf16", "fp16"}) {
          const std::string name = "mlp_step/" + std::string(word) + "/" + dtype + "/d:" + std::to_string(h) +
                                   "/ff:" + std::to_string(ff) + "/tok:" + std::to_string(tokens);
          const BenchSpec* s = all_benchmarks().find(name);
          ASSERT_NE(s, nullptr) << name;
          EXPECT_TRUE(s->suites.count("mlp")) << name;
          EXPECT_DOUBLE_EQ(s->flops, 6.0 * 3 * h * ff * tokens) << name;
          EXPECT_EQ(s->baseline, "mlp_step/linear/" + std::string(dtype) + "/d:" + std::to_string(h) +
                                     "/ff:" + std::to_string(4 * h) + "/tok:" + std::to_string(tokens));
          ++registered;
        }
      }
    }
  }
  EXPECT_EQ(registered, 16);
  std::size_t in_full = 0;
  for (const BenchSpec* s : all_benchmarks().suite("full")) in_full += s->impl.find("swiglu") != std::string::npos;
  // 5 shapes x 2 variants x (2 step dtypes + 1 forward), and the model suite's MLP steps of the 2
  // Llama configurations (d 4096, d_ff 14336 at 4096 and 8192 tokens) x 2 variants x 2 dtypes
  // (bench/model_parts.hpp).
  EXPECT_EQ(in_full, 30u + 2 * 2 * 2);
}

}  // namespace wflops
