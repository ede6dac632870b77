// Host-side decoding of the GPU's 16- and 8-bit floating-point formats, so the fp64 references
// see exactly the values the GPU stored. Written out bit by bit (no CUDA headers needed).
#pragma once
#include <cstddef>
#include <cstdint>

#include "dtype.hpp"

namespace wflops {

double decode_bf16(std::uint16_t bits);     // 1 sign, 8 exponent, 7 mantissa bits
double decode_fp16(std::uint16_t bits);     // 1 sign, 5 exponent (bias 15), 10 mantissa bits
double decode_fp8_e4m3(std::uint8_t bits);  // 1 sign, 4 exponent (bias 7), 3 mantissa; no Inf, S.1111.111 is NaN

// Element `i` of an array stored in `storage` (tf32 is stored as fp32).
double decode_element(DType storage, const void* data, std::size_t i);

}  // namespace wflops
