// Cast benchmarks: each size registers the device copy first (it runs first, so the reporter can
// write every cast's pct_baseline: its GB/s against the copy's), then the four casts.
#include <fmt/core.h>

#include <set>
#include <string>
#include <utility>

#include "bench_families.hpp"
#include "cuda/cast_workload.hpp"
#include "model/flops.hpp"
#include "model_parts.hpp"

namespace wflops {

namespace {

struct CastKind {
  DType in, out;
  const char* what;
};

constexpr CastKind kCasts[] = {
    {DType::fp32, DType::bf16, "fp32 master weights to bf16"},
    {DType::fp32, DType::fp16, "fp32 master weights to fp16"},
    {DType::bf16, DType::fp32, "bf16 to fp32 (gradients, checkpoints)"},
    {DType::fp16, DType::fp32, "fp16 to fp32 (gradients, checkpoints)"},
};

// The largest size: the per-step conversion of a 268M parameter model, and the copy that is the
// bandwidth ceiling of memory-bound parts elsewhere (model_parts.hpp).
constexpr long kLargest = 1L << 28;

std::string shape_of(long n) { return fmt::format("n:{}", n); }

// Returns the copy's name, the casts' baseline.
std::string add_copy(Registry& r, long n, const std::set<std::string>& suites) {
  BenchSpec spec("cast", "d2d_copy", DType::fp32, shape_of(n));
  spec.flops = 0;
  spec.bytes = flops::copy_bytes(static_cast<double>(n), 4);
  spec.suites = suites;
  spec.label = "device-to-device copy (cudaMemcpyAsync), the casts' bandwidth baseline";
  spec.make = [n] { return make_copy_workload(static_cast<std::size_t>(n)); };
  return r.add(std::move(spec));
}

void add_cast(Registry& r, const CastKind& kind, long n, const std::string& baseline,
              const std::set<std::string>& suites) {
  // The narrow type is the benchmark's dtype; the name says both directions.
  BenchSpec spec("cast", "vec16", kind.in == DType::fp32 ? kind.out : kind.in, shape_of(n),
                 fmt::format("{}_{}", dtype_name(kind.in), dtype_name(kind.out)));
  spec.flops = 0;
  spec.bytes = flops::cast_bytes(static_cast<double>(n), static_cast<double>(dtype_bytes(kind.in)),
                                 static_cast<double>(dtype_bytes(kind.out)));
  spec.suites = suites;
  spec.label = kind.what;
  spec.baseline = baseline;
  spec.make = [kind, n] { return make_cast_workload(kind.in, kind.out, static_cast<std::size_t>(n)); };
  r.add(std::move(spec));
}

}  // namespace

std::string add_copy_ceiling(Registry& r, const std::set<std::string>& suites) { return add_copy(r, kLargest, suites); }

void add_cast_benchmarks(Registry& r) {
  for (long n : {1L << 24, 1L << 26, kLargest}) {
    // The quick suite keeps the largest fp32 -> bf16 cast and its copy.
    std::set<std::string> copy_suites = {"cast"};
    if (n == kLargest) copy_suites.insert("quick");
    const std::string copy = add_copy(r, n, copy_suites);
    for (const CastKind& kind : kCasts) {
      std::set<std::string> suites = {"cast"};
      if (n == kLargest && kind.in == DType::fp32 && kind.out == DType::bf16) suites.insert("quick");
      add_cast(r, kind, n, copy, suites);
    }
  }
}

}  // namespace wflops
