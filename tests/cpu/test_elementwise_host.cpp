// The host references of the elementwise kernels (activation.cuh, adamw.cuh, cast.cuh) on
// hand-computed values: they are what the GPU kernels are checked against.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>

#include "common/elementwise_common.cuh"
#include "elementwise/activation.cuh"
#include "elementwise/adamw.cuh"
#include "elementwise/bias_add.cuh"
#include "elementwise/bias_grad.cuh"
#include "elementwise/cast.cuh"
#include "elementwise/residual_add.cuh"
#include "numeric_formats.hpp"

namespace wflops::kernels {

namespace {

float from_bits(std::uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

}  // namespace

TEST(ActivationHost, Names) {
  EXPECT_STREQ(activation_name(Activation::none), "none");
  EXPECT_STREQ(activation_name(Activation::relu), "relu");
  EXPECT_STREQ(activation_name(Activation::gelu), "gelu");
}

TEST(ActivationHost, GeluTanhApproximationValues) {
  // 0.5 * 1 * (1 + tanh(0.7978845608 * 1.044715)) = 0.5 * (1 + tanh(0.8335565)) = 0.84119199...
  EXPECT_NEAR(activation_host(Activation::gelu, 1.0), 0.8411919906, 1e-10);
  EXPECT_NEAR(activation_host(Activation::gelu, -1.0), -0.1588080094, 1e-10);
  EXPECT_NEAR(activation_host(Activation::gelu, 2.0), 1.9545976941, 1e-10);
  EXPECT_DOUBLE_EQ(activation_host(Activation::gelu, 0.0), 0.0);
  // gelu(x) - gelu(-x) = 0.5x(1+t) + 0.5x(1-t) = x for any x.
  for (double x : {0.1, 0.7, 1.3, 2.9, 5.0}) {
    EXPECT_NEAR(activation_host(Activation::gelu, x) - activation_host(Activation::gelu, -x), x, 1e-14) << x;
  }
}

TEST(ActivationHost, ReluAndNone) {
  EXPECT_DOUBLE_EQ(activation_host(Activation::relu, 2.5), 2.5);
  EXPECT_DOUBLE_EQ(activation_host(Activation::relu, -2.5), 0.0);
  EXPECT_DOUBLE_EQ(activation_host(Activation::relu, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(activation_host(Activation::none, -2.5), -2.5);
  EXPECT_DOUBLE_EQ(activation_derivative_host(Activation::relu, 3.0), 1.0);
  EXPECT_DOUBLE_EQ(activation_derivative_host(Activation::relu, -3.0), 0.0);
  EXPECT_DOUBLE_EQ(activation_derivative_host(Activation::relu, 0.0), 0.0);  // 0 at exactly 0, as DRELU
  EXPECT_DOUBLE_EQ(activation_derivative_host(Activation::none, -3.0), 1.0);
}

TEST(ActivationHost, GeluDerivative) {
  // At 0: t = 0, so 0.5 (1 + 0) + 0 = 0.5.
  EXPECT_DOUBLE_EQ(activation_derivative_host(Activation::gelu, 0.0), 0.5);
  // Central differences agree with the closed form (error O(h^2) ~ 1e-10).
  const double h = 1e-5;
  for (double x : {-4.0, -2.0, -1.0, -0.3, 0.2, 0.5, 1.0, 1.7, 3.0}) {
    const double numeric =
        (activation_host(Activation::gelu, x + h) - activation_host(Activation::gelu, x - h)) / (2 * h);
    EXPECT_NEAR(activation_derivative_host(Activation::gelu, x), numeric, 1e-8) << x;
  }
  // gelu' tends to 0 far left and 1 far right.
  EXPECT_NEAR(activation_derivative_host(Activation::gelu, -10.0), 0.0, 1e-12);
  EXPECT_NEAR(activation_derivative_host(Activation::gelu, 10.0), 1.0, 1e-12);
}

TEST(AdamWHost, TwoHandComputedSteps) {
  // Values exact in binary, so each step is checked digit for digit.
  AdamW opt;
  opt.lr = 0.25f;
  opt.beta1 = 0.5f;
  opt.beta2 = 0.75f;
  opt.eps = 0.0f;
  opt.weight_decay = 0.5f;
  double p = 1.0, m = 0.0, v = 0.0;
  // Step 1, g = 0.5: m = 0.25, v = 0.0625; m_hat = 0.25 / 0.5 = 0.5, v_hat = 0.0625 / 0.25 = 0.25;
  // p = 1 - 0.25 * (0.5 / 0.5 + 0.5 * 1) = 0.625.
  adamw_step_host(opt, 1, p, 0.5, m, v);
  EXPECT_DOUBLE_EQ(m, 0.25);
  EXPECT_DOUBLE_EQ(v, 0.0625);
  EXPECT_DOUBLE_EQ(p, 0.625);
  // Step 2, g = -0.5: m = 0.125 - 0.25 = -0.125, v = 0.046875 + 0.0625 = 0.109375;
  // m_hat = -0.125 / 0.75 = -1/6, v_hat = 0.109375 / 0.4375 = 0.25;
  // p = 0.625 - 0.25 * (-1/3 + 0.3125) = 0.625 + 0.25 / 48 = 0.630208333...
  adamw_step_host(opt, 2, p, -0.5, m, v);
  EXPECT_DOUBLE_EQ(m, -0.125);
  EXPECT_DOUBLE_EQ(v, 0.109375);
  EXPECT_NEAR(p, 0.625 + 0.25 / 48.0, 1e-15);
}

TEST(AdamWHost, DefaultsFirstStepMovesByAboutLr) {
  // At step 1 m_hat = g and v_hat = g^2, so the Adam part is g / (|g| + eps) ~ sign(g).
  const AdamW opt;  // lr 1e-4, wd 0.1
  double p = 2.0, m = 0.0, v = 0.0;
  adamw_step_host(opt, 1, p, 0.3, m, v);
  const double lr = opt.lr, eps = opt.eps, wd = opt.weight_decay;
  EXPECT_NEAR(p, 2.0 - lr * (0.3 / (0.3 + eps) + wd * 2.0), 1e-15);
  EXPECT_NEAR(p, 2.0 - 1.2e-4, 1e-9);
}

TEST(CastHost, Bf16RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16_bits_host(1.0f), 0x3F80);
  EXPECT_EQ(float_to_bf16_bits_host(-2.0f), 0xC000);
  EXPECT_EQ(float_to_bf16_bits_host(0.0f), 0x0000);
  EXPECT_EQ(float_to_bf16_bits_host(-0.0f), 0x8000);
  // 1 + 2^-8 is halfway between 0x3F80 and 0x3F81: ties go to the even 0x3F80.
  EXPECT_EQ(float_to_bf16_bits_host(from_bits(0x3F808000u)), 0x3F80);
  // 1 + 3 * 2^-8 is halfway between 0x3F81 and 0x3F82: to the even 0x3F82.
  EXPECT_EQ(float_to_bf16_bits_host(from_bits(0x3F818000u)), 0x3F82);
  // Just above and below a half: nearest.
  EXPECT_EQ(float_to_bf16_bits_host(from_bits(0x3F808001u)), 0x3F81);
  EXPECT_EQ(float_to_bf16_bits_host(from_bits(0x3F807FFFu)), 0x3F80);
  // The largest finite fp32 rounds up to Inf; Inf stays Inf; NaN stays NaN.
  EXPECT_EQ(float_to_bf16_bits_host(std::numeric_limits<float>::max()), 0x7F80);
  EXPECT_EQ(float_to_bf16_bits_host(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_TRUE(std::isnan(decode_bf16(float_to_bf16_bits_host(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(CastHost, Fp16RoundsToNearestEvenWithSubnormals) {
  EXPECT_EQ(float_to_fp16_bits_host(1.0f), 0x3C00);
  EXPECT_EQ(float_to_fp16_bits_host(-2.0f), 0xC000);
  EXPECT_EQ(float_to_fp16_bits_host(0.5f), 0x3800);
  EXPECT_EQ(float_to_fp16_bits_host(65504.0f), 0x7BFF);  // largest finite fp16
  // 65519.99 rounds down to 65504, 65520 (halfway to 2^16) rounds to even, i.e. Inf.
  EXPECT_EQ(float_to_fp16_bits_host(65519.0f), 0x7BFF);
  EXPECT_EQ(float_to_fp16_bits_host(65520.0f), 0x7C00);
  EXPECT_EQ(float_to_fp16_bits_host(-1e6f), 0xFC00);
  // Ties in the normal range: 1 + 2^-11 -> 0x3C00 (even), 1 + 3 * 2^-11 -> 0x3C02.
  EXPECT_EQ(float_to_fp16_bits_host(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  EXPECT_EQ(float_to_fp16_bits_host(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  // Smallest normal 2^-14 and subnormals in units of 2^-24.
  EXPECT_EQ(float_to_fp16_bits_host(std::ldexp(1.0f, -14)), 0x0400);
  EXPECT_EQ(float_to_fp16_bits_host(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(float_to_fp16_bits_host(std::ldexp(1.0f, -25)), 0x0000);      // tie: to the even 0
  EXPECT_EQ(float_to_fp16_bits_host(3 * std::ldexp(1.0f, -25)), 0x0002);  // tie between 1 and 2: 2
  EXPECT_EQ(float_to_fp16_bits_host(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(float_to_fp16_bits_host(-std::ldexp(1.0f, -24)), 0x8001);
  EXPECT_EQ(float_to_fp16_bits_host(std::ldexp(1023.0f, -24)), 0x03FF);  // largest subnormal
  // 2^-14 - 2^-25 is halfway between the largest subnormal and 2^-14: to the even 0x0400.
  EXPECT_EQ(float_to_fp16_bits_host(std::ldexp(2047.0f, -25)), 0x0400);
  EXPECT_EQ(float_to_fp16_bits_host(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(float_to_fp16_bits_host(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_TRUE(std::isnan(decode_fp16(float_to_fp16_bits_host(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(CastHost, Fp16RoundTripAndNearestOverARange) {
  // Every finite fp16 value converts back to its own bits, and a value between two neighbours
  // goes to the nearer one.
  for (std::uint32_t b = 0; b < 0x7C00; ++b) {
    const auto h = static_cast<std::uint16_t>(b);
    const auto x = static_cast<float>(decode_fp16(h));
    ASSERT_EQ(float_to_fp16_bits_host(x), h) << b;
    if (b + 1 < 0x7C00) {
      const double next = decode_fp16(static_cast<std::uint16_t>(b + 1));
      const auto just_below_mid = static_cast<float>(x + (next - x) * 0.49);
      ASSERT_EQ(float_to_fp16_bits_host(just_below_mid), h) << b;
    }
  }
}

TEST(CastHost, AgreesWithCudaHostConversionsOnRandomBits) {
  // An independent check of the bit-by-bit references: CUDA's own host-side conversions, on
  // random fp32 bit patterns (every exponent, so overflow, subnormal and tie cases occur).
  std::mt19937 rng(12345);
  int compared = 0;
  for (int i = 0; i < 2000000; ++i) {
    const float x = from_bits(static_cast<std::uint32_t>(rng()));
    if (std::isnan(x)) continue;  // NaN payloads may differ; NaN-ness is checked above
    const __nv_bfloat16 b = __float2bfloat16_rn(x);
    const __half h = __float2half_rn(x);
    std::uint16_t b_bits, h_bits;
    std::memcpy(&b_bits, &b, 2);
    std::memcpy(&h_bits, &h, 2);
    ASSERT_EQ(float_to_bf16_bits_host(x), b_bits) << std::hexfloat << x;
    ASSERT_EQ(float_to_fp16_bits_host(x), h_bits) << std::hexfloat << x;
    ++compared;
  }
  EXPECT_GT(compared, 1900000);
}

TEST(ElementwiseArguments, RefusedBeforeAnyLaunch) {
  // Bad arguments return cudaErrorInvalidValue before touching the GPU, so this runs anywhere.
  // The pointers are host memory that is never dereferenced.
  float dummy[64] = {};
  void* p = dummy;
  EXPECT_EQ(activation_forward(DType::fp8_e4m3, Activation::gelu, p, p, 8, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(activation_forward(DType::bf16, static_cast<Activation>(7), p, p, 8, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(activation_forward(DType::bf16, Activation::gelu, nullptr, p, 8, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(activation_backward(DType::int8, Activation::relu, p, p, p, 8, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(residual_add(DType::tf32, p, p, p, 8, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(bias_add(DType::fp8_e4m3, p, p, p, 2, 4, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(bias_add(DType::bf16, p, p, p, -1, 4, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(bias_grad(DType::bf16, p, DType::fp16, p, 2, 4, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(bias_grad(DType::fp8_e4m3, p, DType::fp32, p, 2, 4, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(bias_grad(DType::bf16, p, DType::fp32, p, 2, -4, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cast(DType::fp32, p, DType::fp32, p, 8, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cast(DType::fp16, p, DType::bf16, p, 8, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cast(DType::fp32, p, DType::fp8_e4m3, p, 8, nullptr), cudaErrorInvalidValue);
  float* f = dummy;
  EXPECT_EQ(adamw_step(AdamW{}, 0, f, f, f, f, 8, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(adamw_step(AdamW{}, 1, f, nullptr, f, f, 8, nullptr), cudaErrorInvalidValue);
  // Nothing to do is not an error.
  EXPECT_EQ(activation_forward(DType::bf16, Activation::gelu, nullptr, nullptr, 0, nullptr), cudaSuccess);
  EXPECT_EQ(bias_add(DType::bf16, nullptr, nullptr, nullptr, 0, 4, nullptr), cudaSuccess);
}

}  // namespace wflops::kernels
