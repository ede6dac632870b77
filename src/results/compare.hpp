// `wflops compare`: the same benchmarks measured in several result files (H100 against A100,
// today against last month, every GPU of a cluster) side by side. Pure functions: build a
// CompareReport from files already read, then render it as text, Markdown, CSV or JSON.
#pragma once
#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "results/result_reader.hpp"

namespace wflops::compare {

struct Options {
  // Match "matmul/cublaslt_auto/bf16/..." with "matmul/torch_eager/bf16/...": the implementation
  // part of the name is ignored (to pair wflops with a PyTorch peer's file). Off by default.
  bool ignore_implementation = false;
  // Pairs of implementation words that stand for the same benchmark, "theirs=ours" (e.g.
  // "torch_compile_gelu_residual=fused_gelu_residual"): a benchmark named with the first is
  // matched as if named with the second. Finer than ignore_implementation when a file holds
  // several implementations of one shape (each MLP variant is an implementation word).
  std::vector<std::pair<std::string, std::string>> implementation_pairs;
  // A ratio is "beyond noise" when |tau_i - tau_1| > noise_sigmas * sqrt(s_1^2 + s_i^2), s the
  // standard deviation of tau over each file's repetitions.
  double noise_sigmas = 2.0;
  // Cluster mode: a GPU whose tau is, over the shared benchmarks, more than this percentage below
  // the per-benchmark median of all files (geometric mean of its ratios) is flagged.
  double outlier_pct = 5.0;
  // Cluster mode needs at least this many files for a median to mean something.
  std::size_t outlier_min_files = 3;
  // A file whose median clock_ratio (over the benchmarks it shares with file 1 that both measured
  // it for) differs from file 1's by more than this percentage gets a warning: its taus differ
  // partly because its GPU ran at another clock (power limit, cooling, application clocks).
  double clock_ratio_pct = 5.0;
  // A pct_peak above this is flagged: the H100's datasheet peak assumes an SM clock of about 1830 MHz
  // and its boost clock is 1980, so a few percent over 100 can be real; more means the peak it was
  // computed against was the wrong one (another dtype's, a --peak set too low).
  double max_plausible_pct_peak = 110.0;
};

enum class Noise { unknown, within, beyond };

struct Cell {
  bool present = false;
  const BenchmarkResult* result = nullptr;  // into the ResultFile; null when absent
};

struct Row {
  std::string key;                           // the name (implementation replaced by '*' when ignored)
  std::vector<Cell> cells;                   // one per file
  std::vector<std::optional<double>> ratio;  // tau_i / tau_1 (ratio[0] is 1 when tau_1 exists)
  std::vector<Noise> noise;                  // whether ratio[i] is beyond the repetitions' spread
  std::size_t present_in = 0;                // files that have this benchmark
};

struct FileStanding {  // cluster mode: one file against the median of all files
  std::size_t file = 0;
  double ratio_to_median = 1.0;  // geometric mean over the benchmarks of tau / median tau
  std::size_t benchmarks = 0;    // benchmarks that went into it
  std::size_t below = 0;         // of which more than outlier_pct below the median
  bool outlier = false;
};

struct Report {
  std::vector<std::string> paths;
  std::vector<std::string> labels;
  std::vector<Row> rows;              // every benchmark of any file, first file's order first
  std::vector<std::string> warnings;  // versions that differ, cut-short files, implausible counters, ...
  bool cluster = false;               // >= outlier_min_files files of one GPU model
  double outlier_pct = 0;
  std::vector<FileStanding> standings;  // cluster mode only, one per file
};

Report compare_results(const std::vector<ResultFile>& files, const Options& options);

enum class Format { table, markdown, csv, json };
// Throws UserError when a benchmark that reports no error has a TFLOP/s or GB/s figure that no
// measurement can give (zero or negative), or a negative pct_peak; the message names the file and
// the benchmark. compare_results calls it on every file.
void check_counters(const ResultFile& file);

// Parses "table" | "markdown" | "csv" | "json"; throws UserError otherwise.
Format parse_format(const std::string& text);
// The report in `format`. The table and the CSV leave the warnings out (the program writes them
// to stderr); Markdown (a document to paste) and JSON carry them.
std::string render(const Report& report, Format format);
nlohmann::json to_json(const Report& report);

}  // namespace wflops::compare
