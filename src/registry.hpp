// Every benchmark wflops knows, described by data: its name (family/impl/dtype/shape), dtype,
// FLOP model count, least bytes moved, suites, and how to make what it measures. `list` reads
// the descriptions without a GPU; `run` hands the selected ones to Google Benchmark, whose body
// gives the spec's workload factory to the harness (src/cuda/harness.hpp).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "dtype.hpp"

namespace wflops {

inline constexpr const char* kPhaseBytesPrefix = "phase_bytes_";

// What a benchmark measures: buffers, one launch, a verification (src/cuda/harness.hpp). Only
// declared here, so that this CPU-only library can hold the factories without knowing CUDA.
class Workload;
using WorkloadFactory = std::function<std::unique_ptr<Workload>()>;

// "family/impl/dtype/shape", the one format of every benchmark name (docs/conventions.md).
std::string benchmark_name(const std::string& family, const std::string& impl, const std::string& dtype,
                           const std::string& shape);

struct BenchSpec {
  // The name is built here from its parts, so no family spells the format itself. `name_dtype` is
  // the name's dtype part when it is not dtype_name(dtype): a cast names both of its types
  // ("fp32_bf16") but is measured against the narrow one.
  BenchSpec(std::string family_word, std::string impl_word, DType measured_dtype, std::string shape_keys,
            std::string name_dtype = "");

  std::string name;           // "matmul/cublaslt_auto/bf16/m:4096/n:8192/k:4096"
  std::string family;         // "matmul"
  std::string impl;           // "cublaslt_auto"
  DType dtype = DType::bf16;  // also the peak that pct_peak is measured against
  std::string shape;          // "m:4096/n:8192/k:4096"
  double flops = 0;           // FLOPs of one iteration (FLOP model)
  double bytes = 0;           // least bytes one iteration moves
  std::set<std::string> suites;
  std::string label;  // what the shape stands for, e.g. "h=4096 MLP up-projection"
  // Another benchmark this one is read against (e.g. the linear MLP step for a fused step, the
  // dense MLP step for an MoE layer): the reporter adds pct_baseline = 100 * tflops / its
  // tflops when both ran. It must be registered earlier and belong to the same suites.
  std::string baseline;
  // Further FLOP-model figures of one iteration, written as counters beside flops: attn_flops,
  // routing_flops (docs/conventions.md), or the FLOPs under a second convention.
  // phase_bytes_<part> (kPhaseBytesPrefix): the least bytes of one part of the time split (the
  // elementwise passes of an MLP step); the harness divides it by that part's time: phase_gbps_<part>.
  std::map<std::string, double> counters;
  // Makes the workload; the harness calls it once per benchmark, when the benchmark first runs.
  WorkloadFactory make;
};

class Registry {
 public:
  // Adds a benchmark; a name already present only gains the new suites and label. Returns the name.
  std::string add(BenchSpec spec);
  const std::vector<BenchSpec>& all() const { return specs_; }
  // The benchmark of that name; nullptr when there is none.
  const BenchSpec* find(const std::string& name) const;
  // The benchmarks of a suite ("full" holds every benchmark).
  std::vector<const BenchSpec*> suite(const std::string& name) const;
  std::set<std::string> suite_names() const;
  // "attention, cast, full, ..." for messages and help texts.
  std::string suite_list() const;

 private:
  std::vector<BenchSpec> specs_;
};

}  // namespace wflops
