// Reading result files (docs/result-format.md, docs/result.schema.json) back: what `wflops run`
// and the PyTorch peer scripts write, Google Benchmark's JSON with wflops' context keys and
// counters. compare, budget --results and plan --results read files through here, so a file that
// is not JSON, or not a wflops result, fails the same way everywhere: a UserError naming the file
// and what is wrong with it.
#pragma once
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace wflops {

// One benchmark of a result file, its repetitions and aggregates folded together.
struct BenchmarkResult {
  std::string name;  // run_name: "matmul/cublaslt_auto/bf16/m:4096/n:8192/k:4096"
  bool failed = false;
  std::string error_message;
  // tau: the "tflops" counter of the median aggregate when there were repetitions, of the only
  // iteration run otherwise (the median of the repetitions when no aggregate was written).
  std::optional<double> tflops;
  std::optional<double> pct_peak;
  std::optional<double> gbps;
  std::optional<double> flops;  // FLOPs of one iteration
  std::optional<double> bytes;  // bytes one iteration moves at least
  // Spread of tau over repetitions: the stddev aggregate, else the sample standard deviation
  // of the repetitions' own tflops. Absent with a single run.
  std::optional<double> tflops_stddev;
  int repetitions = 1;
  std::vector<double> repetition_tflops;   // the iteration runs' tflops, in file order
  bool throttled = false;                  // any repetition had the throttled counter set
  std::map<std::string, double> counters;  // every numeric counter of the representative entry
};

struct ResultFile {
  std::string path;                         // as given, for messages
  nlohmann::json context;                   // the context object, as written
  std::vector<BenchmarkResult> benchmarks;  // in the order of first appearance

  // Context helpers: the value as text ("" when absent or null; numbers printed).
  std::string context_text(const std::string& key) const;
  std::optional<double> context_number(const std::string& key) const;
  // "NVIDIA H100 80GB HBM3 (node17 #0)": GPU name, host and GPU index, for headings.
  std::string label() const;
  const BenchmarkResult* find(const std::string& name) const;
};

// Parses and validates `text`; `path` only names the file in messages. Throws UserError.
ResultFile parse_result_text(const std::string& text, const std::string& path);
// Reads and validates a result file. Throws UserError (unreadable, not JSON, not a wflops result).
ResultFile read_result_file(const std::filesystem::path& path);

// A benchmark name "family/impl/dtype/key:value/...", split.
struct BenchmarkName {
  std::string family;                                       // "moe_step"
  std::string implementation;                               // "grouped"
  std::string dtype;                                        // "bf16"
  std::vector<std::pair<std::string, std::string>> params;  // {"d","2048"}, {"E","64"}, ...
  std::optional<std::string> param(const std::string& key) const;
  std::optional<double> number(const std::string& key) const;  // param parsed as a number
};
BenchmarkName parse_benchmark_name(const std::string& name);

}  // namespace wflops

namespace wflops {

// tau (TFLOP/s) of the benchmark named `name` in `file`; throws UserError naming the file when it
// is absent, failed, or has no tflops counter.
double measured_tflops(const ResultFile& file, const std::string& name);

}  // namespace wflops
