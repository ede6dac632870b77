// The element types wflops benchmarks, and what a peak table entry each is measured against.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace wflops {

// Storage/compute precision of a benchmark. tf32 is stored as fp32 and computed on tensor cores.
enum class DType { fp64, fp32, tf32, fp16, bf16, fp8_e4m3, int8 };

std::string_view dtype_name(DType t);  // "fp32", "tf32", "bf16", "fp8", ...
std::optional<DType> parse_dtype(std::string_view s);
std::size_t dtype_bytes(DType t);  // bytes per stored element (tf32: 4)

// Relative-error tolerance of a verification in this dtype (docs/conventions.md).
double dtype_tolerance(DType t);

}  // namespace wflops
