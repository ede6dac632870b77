#include "dtype.hpp"

namespace wflops {

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::fp64: return "fp64";
    case DType::fp32: return "fp32";
    case DType::tf32: return "tf32";
    case DType::fp16: return "fp16";
    case DType::bf16: return "bf16";
    case DType::fp8_e4m3: return "fp8";
    case DType::int8: return "int8";
  }
  return "?";
}

std::optional<DType> parse_dtype(std::string_view s) {
  for (DType t : {DType::fp64, DType::fp32, DType::tf32, DType::fp16, DType::bf16, DType::fp8_e4m3, DType::int8}) {
    if (dtype_name(t) == s) return t;
  }
  if (s == "fp8_e4m3" || s == "e4m3") return DType::fp8_e4m3;
  return std::nullopt;
}

std::size_t dtype_bytes(DType t) {
  switch (t) {
    case DType::fp64: return 8;
    case DType::fp32:
    case DType::tf32: return 4;
    case DType::fp16:
    case DType::bf16: return 2;
    case DType::fp8_e4m3:
    case DType::int8: return 1;
  }
  return 0;
}

double dtype_tolerance(DType t) {
  switch (t) {
    case DType::fp64:
    case DType::fp32: return 1e-5;
    case DType::tf32: return 1e-3;
    case DType::fp16:
    case DType::bf16: return 1e-2;
    case DType::fp8_e4m3: return 5e-2;
    case DType::int8: return 0.0;  // integer GEMMs are exact
  }
  return 0.0;
}

}  // namespace wflops
