#include "numeric_formats.hpp"

#include <cmath>
#include <cstring>
#include <limits>

namespace wflops {

double decode_bf16(std::uint16_t bits) {
  // bf16 is the upper half of an fp32.
  const std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof f);
  return f;
}

double decode_fp16(std::uint16_t bits) {
  const int sign = (bits >> 15) & 1;
  const int exponent = (bits >> 10) & 0x1F;
  const int mantissa = bits & 0x3FF;
  double v;
  if (exponent == 0) {
    v = std::ldexp(mantissa, -24);  // subnormal: 0.m x 2^-14
  } else if (exponent == 31) {
    v = mantissa ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  } else {
    v = std::ldexp(1024 + mantissa, exponent - 25);  // 1.m x 2^(e-15)
  }
  return sign ? -v : v;
}

double decode_fp8_e4m3(std::uint8_t bits) {
  const int sign = (bits >> 7) & 1;
  const int exponent = (bits >> 3) & 0xF;
  const int mantissa = bits & 0x7;
  double v;
  if (exponent == 15 && mantissa == 7) {
    v = std::numeric_limits<double>::quiet_NaN();
  } else if (exponent == 0) {
    v = std::ldexp(mantissa, -9);  // subnormal: 0.m x 2^-6
  } else {
    v = std::ldexp(8 + mantissa, exponent - 10);  // 1.m x 2^(e-7)
  }
  return sign ? -v : v;
}

double decode_element(DType storage, const void* data, std::size_t i) {
  switch (storage) {
    case DType::fp64: return static_cast<const double*>(data)[i];
    case DType::fp32:
    case DType::tf32: return static_cast<const float*>(data)[i];
    case DType::fp16: return decode_fp16(static_cast<const std::uint16_t*>(data)[i]);
    case DType::bf16: return decode_bf16(static_cast<const std::uint16_t*>(data)[i]);
    case DType::fp8_e4m3: return decode_fp8_e4m3(static_cast<const std::uint8_t*>(data)[i]);
    case DType::int8: return static_cast<const std::int8_t*>(data)[i];
  }
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace wflops
