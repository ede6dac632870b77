// Host decoders of the GPU's narrow formats, on hand-checked bit patterns.
#include <gtest/gtest.h>

#include <cmath>

#include "dtype.hpp"
#include "numeric_formats.hpp"

namespace wflops {

TEST(NumericFormats, Bf16) {
  EXPECT_EQ(decode_bf16(0x3F80), 1.0);
  EXPECT_EQ(decode_bf16(0xBF80), -1.0);
  EXPECT_EQ(decode_bf16(0x4040), 3.0);
  EXPECT_EQ(decode_bf16(0x3F81), 1.0 + 1.0 / 128);  // 7 mantissa bits
  EXPECT_TRUE(std::isnan(decode_bf16(0xFFFF)));     // the poison pattern
}

TEST(NumericFormats, Fp16) {
  EXPECT_EQ(decode_fp16(0x3C00), 1.0);
  EXPECT_EQ(decode_fp16(0xC000), -2.0);
  EXPECT_EQ(decode_fp16(0x3C01), 1.0 + 1.0 / 1024);
  EXPECT_EQ(decode_fp16(0x7BFF), 65504.0);               // largest finite
  EXPECT_EQ(decode_fp16(0x0001), std::ldexp(1.0, -24));  // smallest subnormal
  EXPECT_TRUE(std::isinf(decode_fp16(0x7C00)));
  EXPECT_TRUE(std::isnan(decode_fp16(0xFFFF)));
}

TEST(NumericFormats, Fp8E4M3) {
  EXPECT_EQ(decode_fp8_e4m3(0x38), 1.0);  // exponent 7 (bias 7), mantissa 0
  EXPECT_EQ(decode_fp8_e4m3(0xB8), -1.0);
  EXPECT_EQ(decode_fp8_e4m3(0x3C), 1.5);
  EXPECT_EQ(decode_fp8_e4m3(0x7E), 448.0);                // largest finite
  EXPECT_EQ(decode_fp8_e4m3(0x01), std::ldexp(1.0, -9));  // smallest subnormal
  EXPECT_TRUE(std::isnan(decode_fp8_e4m3(0x7F)));
  EXPECT_TRUE(std::isnan(decode_fp8_e4m3(0xFF)));  // the poison pattern
}

TEST(NumericFormats, DecodeElementAndDtypes) {
  const float f[2] = {0.5f, -2.25f};
  EXPECT_EQ(decode_element(DType::fp32, f, 1), -2.25);
  EXPECT_EQ(decode_element(DType::tf32, f, 0), 0.5);
  EXPECT_EQ(dtype_bytes(DType::tf32), 4u);
  EXPECT_EQ(dtype_bytes(DType::fp8_e4m3), 1u);
  EXPECT_EQ(parse_dtype("fp8"), DType::fp8_e4m3);
  EXPECT_EQ(parse_dtype("bf16"), DType::bf16);
  EXPECT_FALSE(parse_dtype("fp4"));
  EXPECT_DOUBLE_EQ(dtype_tolerance(DType::bf16), 1e-2);
  EXPECT_DOUBLE_EQ(dtype_tolerance(DType::tf32), 1e-3);
  EXPECT_DOUBLE_EQ(dtype_tolerance(DType::fp32), 1e-5);
  EXPECT_DOUBLE_EQ(dtype_tolerance(DType::fp8_e4m3), 5e-2);
}

}  // namespace wflops
