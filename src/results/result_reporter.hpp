// The reporter of `wflops run`: prints a readable table (benchmark, time, TFLOP/s, % of peak) and
// keeps the result file up to date after every benchmark, so a run cut short (Ctrl-C, a
// scheduler's SIGTERM, a crash) leaves valid JSON holding every benchmark that finished, with
// context.interrupted = true. The JSON is Google Benchmark's own (its JSONReporter writes it),
// with wflops' typed context keys and a summary merged in.
#pragma once
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace wflops {

class ResultReporter : public benchmark::BenchmarkReporter {
 public:
  // `path` empty: no file is written. `context`: from make_context(). `table`: where the table goes.
  // `earlier`: the benchmark entries of the same run written by an earlier process (a run goes on
  // in a fresh process after a benchmark took the last one down); they stay first in the
  // file, count for pct_best_gemm and pct_baseline, and the table then goes on without a heading.
  ResultReporter(std::filesystem::path path, nlohmann::json context, std::FILE* table,
                 nlohmann::json earlier = nlohmann::json::array());

  // name -> the benchmark it is read against (BenchSpec::baseline), for pct_baseline.
  void set_baselines(std::map<std::string, std::string> baselines) { baselines_ = std::move(baselines); }

  // How far the run has got, on the table only (the file never carries it): `heading` goes before
  // the table's heading, and `row(name)` gives the text before a benchmark's row and after it
  // ("[ 3/42] ", "  about 12 min left"); it is called once per benchmark, as its row is printed.
  struct TableProgress {
    std::string heading;
    std::function<std::pair<std::string, std::string>(const std::string& name)> row;
  };
  void set_table_progress(TableProgress progress) { progress_ = std::move(progress); }

  bool ReportContext(const Context& context) override;
  void ReportRuns(const std::vector<Run>& runs) override;
  void Finalize() override;
  // Reports a benchmark held back for the aggregates that were to follow its repetitions (see
  // ReportRuns), if any; Finalize does it too. A reporter that stands in front of this one and
  // does not pass Finalize on calls this instead.
  void complete_pending();
  // True while the repetitions of a benchmark wait for their aggregates: nothing of that benchmark
  // is in the file or the table yet.
  bool pending() const { return !pending_.empty(); }

  // The result document as it stands (what the file holds).
  nlohmann::json document() const;
  int errors() const { return errors_; }
  int throttled() const { return throttled_; }

 private:
  void write() const;
  // One benchmark, all its runs (repetitions and aggregates): relative counters, JSON, row, file.
  void report_benchmark(std::vector<Run> runs);
  void print_row(const std::vector<Run>& runs);
  // Adds the counters that compare a benchmark with others of the same run: pct_best_gemm (τ over
  // the best matmul τ of its dtype measured so far) and pct_baseline; remembers matmul ceilings.
  void add_relative_counters(std::vector<Run>& runs);
  // Remembers the measured τ (or GB/s) of the earlier entries, as add_relative_counters would have.
  void remember_earlier();

  std::filesystem::path path_;
  nlohmann::json context_;
  std::FILE* table_;
  std::ostringstream gb_json_;  // Google Benchmark's JSON, as far as it has been written
  std::ostringstream gb_errors_;
  benchmark::JSONReporter gb_;
  bool finished_ = false;
  int errors_ = 0;
  int throttled_ = 0;
  nlohmann::json earlier_;  // benchmark entries of earlier processes of the same run
  std::map<std::string, std::string> baselines_;
  TableProgress progress_;
  std::vector<Run> pending_;                        // repetitions whose aggregates Google Benchmark reports next
  std::map<std::string, double> measured_tflops_;   // name -> median τ (GB/s if memory-bound) so far
  std::map<std::string, double> best_gemm_tflops_;  // dtype -> best matmul median τ so far
};

// The summary block of a result document from its benchmark entries: matmul_max_tflops and
// moe_tau_by_granularity, each present when there is something to put in it.
nlohmann::json result_summary(const nlohmann::json& benchmarks);

// The best TFLOP/s per dtype over the matmul benchmarks of a result document: the measured
// ceiling that later benchmarks quote beside the datasheet peak. {"bf16": {"tflops", "benchmark"}}.
nlohmann::json matmul_ceiling(const nlohmann::json& benchmarks);

// The curve tau(G) of the MoE layer: per configuration (dtype and every name part but G, e.g.
// "bf16/d:2048/E:64/tok:32768/route:expert_choice"), one point per granularity G, the fastest
// implementation's {"G", "tflops", "benchmark", "pct_baseline" (vs the dense MLP step, if
// measured)}, sorted by G. The planner reads the same benchmarks (wflops plan --results).
nlohmann::json moe_tau_curves(const nlohmann::json& benchmarks);

}  // namespace wflops
