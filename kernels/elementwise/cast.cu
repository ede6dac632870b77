// Casts between fp32 and bf16/fp16, round to nearest even, on the shared elementwise loop
// (elementwise_vector.cuh): each thread converts vectors of 8 elements, 16 bytes on the 16-bit
// side and 2 x 16 bytes on the fp32 side, so every access is a 16-byte vector; elements past the
// last whole vector (or all of them, when a pointer is not 16-byte aligned) go one by one. The
// bit-by-bit host conversions below are the references.
#include <cstring>

#include "common/elementwise_vector.cuh"
#include "elementwise/cast.cuh"

namespace wflops::kernels {

namespace {

// The value passes through fp32 on its way: exact for a widening cast; for a narrowing one
// from_float rounds to nearest even (cvt.rn).
struct Convert {
  __device__ void operator()(const float (&x)[1], float (&y)[1]) const { y[0] = x[0]; }
};

std::uint32_t float_bits(float x) {
  std::uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

// Drops the low `shift` bits of `value` (1 <= shift <= 31), rounding to nearest, ties to even.
std::uint32_t shift_right_rne(std::uint32_t value, int shift) {
  const std::uint32_t kept = value >> shift;
  const std::uint32_t rest = value & ((1u << shift) - 1);
  const std::uint32_t half = 1u << (shift - 1);
  return kept + ((rest > half || (rest == half && (kept & 1))) ? 1 : 0);
}

}  // namespace

cudaError_t cast(DType in_dtype, const void* in, DType out_dtype, void* out, std::size_t n, cudaStream_t stream) {
  const bool narrow_out = in_dtype == DType::fp32 && (out_dtype == DType::bf16 || out_dtype == DType::fp16);
  const bool widen_in = out_dtype == DType::fp32 && (in_dtype == DType::bf16 || in_dtype == DType::fp16);
  if (!narrow_out && !widen_in) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (in == nullptr || out == nullptr) return cudaErrorInvalidValue;
  if (out_dtype == DType::bf16) return vec::launch_flat<Convert, float, __nv_bfloat16>({in}, {out}, n, stream);
  if (out_dtype == DType::fp16) return vec::launch_flat<Convert, float, __half>({in}, {out}, n, stream);
  if (in_dtype == DType::bf16) return vec::launch_flat<Convert, __nv_bfloat16, float>({in}, {out}, n, stream);
  return vec::launch_flat<Convert, __half, float>({in}, {out}, n, stream);
}

std::uint16_t float_to_bf16_bits_host(float x) {
  const std::uint32_t b = float_bits(x);
  if ((b & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((b >> 16) | 0x0040u);  // quiet NaN
  // bf16 is the upper half of an fp32: round the lower 16 bits away. A carry out of the mantissa
  // correctly bumps the exponent (and the largest finite values round up to Inf).
  return static_cast<std::uint16_t>(shift_right_rne(b, 16));
}

std::uint16_t float_to_fp16_bits_host(float x) {
  const std::uint32_t b = float_bits(x);
  const auto sign = static_cast<std::uint16_t>((b >> 16) & 0x8000u);
  const std::uint32_t magnitude = b & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return sign | 0x7E00u;   // NaN
  if (magnitude >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 (Inf included) rounds to Inf
  const int exponent = static_cast<int>(magnitude >> 23) - 127;
  const std::uint32_t mantissa = magnitude & 0x7FFFFFu;
  if (exponent >= -14) {
    // Normal fp16: rebias the exponent, keep 10 of the 23 mantissa bits. A carry out of the
    // mantissa moves to the next exponent, which is the right value.
    const std::uint32_t wide = (static_cast<std::uint32_t>(exponent + 15) << 23) | mantissa;
    return sign | static_cast<std::uint16_t>(shift_right_rne(wide, 13));
  }
  if ((magnitude >> 23) == 0) return sign;  // fp32 subnormals are far below fp16's least 2^-24
  // Subnormal fp16: x = (2^23 + mantissa) * 2^(exponent - 23), counted in units of 2^-24, i.e.
  // (2^23 + mantissa) * 2^(exponent + 1); exponent <= -15 makes that a right shift by >= 14.
  const int shift = -(exponent + 1);
  if (shift > 24) return sign;  // below 2^-25: rounds to 0
  return sign | static_cast<std::uint16_t>(shift_right_rne(0x800000u | mantissa, shift));
}

}  // namespace wflops::kernels
