#include "results/result_reporter.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <map>

#include "clock_assessment.hpp"
#include "results/result_file.hpp"
#include "results/result_reader.hpp"

namespace wflops {

namespace {

double counter(const benchmark::BenchmarkReporter::Run& run, const char* key, double fallback = -1) {
  auto it = run.counters.find(key);
  return it == run.counters.end() ? fallback : static_cast<double>(it->second.value);
}

const benchmark::BenchmarkReporter::Run* find_aggregate(const std::vector<benchmark::BenchmarkReporter::Run>& runs,
                                                        const char* name) {
  for (const auto& r : runs) {
    if (r.run_type == benchmark::BenchmarkReporter::Run::RT_Aggregate && r.aggregate_name == name) return &r;
  }
  return nullptr;
}

}  // namespace

ResultReporter::ResultReporter(std::filesystem::path path, nlohmann::json context, std::FILE* table,
                               nlohmann::json earlier)
    : path_(std::move(path)), context_(std::move(context)), table_(table), earlier_(std::move(earlier)) {
  gb_.SetOutputStream(&gb_json_);
  gb_.SetErrorStream(&gb_errors_);
  if (!earlier_.is_array()) earlier_ = nlohmann::json::array();
  remember_earlier();
  write();  // valid JSON (context, earlier benchmarks) from the first moment the file exists
}

void ResultReporter::remember_earlier() {
  for (const auto& b : earlier_) {
    if (b.value("error_occurred", false)) continue;
    const bool aggregate = b.value("run_type", "") == "aggregate";
    // The entry that stands for the benchmark: its median, or its only run.
    if (aggregate ? b.value("aggregate_name", "") != "median" : b.value("repetitions", 1) > 1) continue;
    const bool has_tflops = b.contains("tflops") && b["tflops"].is_number() && b["tflops"].get<double>() > 0;
    const char* measure = has_tflops ? "tflops" : "gbps";
    if (!b.contains(measure) || !b[measure].is_number()) continue;
    const double value = b[measure].get<double>();
    if (value <= 0) continue;
    const std::string name = b.value("run_name", b.value("name", ""));
    measured_tflops_[name] = value;
    const BenchmarkName parsed = parse_benchmark_name(name);
    if (has_tflops && parsed.family == "matmul" && !parsed.dtype.empty() && value > best_gemm_tflops_[parsed.dtype]) {
      best_gemm_tflops_[parsed.dtype] = value;
    }
  }
}

bool ResultReporter::ReportContext(const Context& context) {
  gb_.ReportContext(context);
  if (table_ && earlier_.empty()) {  // a run that goes on keeps the heading it printed first
    const auto& c = context_;
    fmt::print(table_, "GPU {}: {} ({} SMs, cc {}, {:.1f} GiB), driver {}, CUDA {}, cuBLAS {}\n",
               c.value("gpu_index", 0), c.value("gpu_name", "?"), c.value("sm_count", 0), c.value("cc", "?"),
               c.value("mem_gib", 0.0), c["driver"].is_string() ? c["driver"].get<std::string>() : "?",
               c["cuda_runtime"].is_string() ? c["cuda_runtime"].get<std::string>() : "?",
               c["cublas"].is_string() ? c["cublas"].get<std::string>() : "?");
    if (path_.empty()) {
      fmt::print(table_, "results: not written (no file)\n");
    } else {
      fmt::print(table_, "results: {}\n", path_.string());
    }
    fmt::print(table_, "{}{:<64} {:>10} {:>9} {:>7} {:>6} {:>5}  {}\n", progress_.heading, "benchmark", "time/ms",
               "TFLOP/s", "%peak", "cv%", "clock", "notes");
    std::fflush(table_);
  }
  write();
  return true;
}

void ResultReporter::print_row(const std::vector<Run>& runs) {
  if (runs.empty()) return;
  const Run* errored = nullptr;
  for (const auto& r : runs) {
    if (r.error_occurred) errored = &r;
  }
  const std::string name = runs.front().run_name.str();
  const auto [before, after] = progress_.row ? progress_.row(name) : std::pair<std::string, std::string>();
  if (errored) {
    ++errors_;
    if (table_) fmt::print(table_, "{}{:<64} ERROR: {}{}\n", before, name, errored->error_message, after);
    if (table_) std::fflush(table_);
    return;
  }
  // With repetitions, the median (and its coefficient of variation) stands for the benchmark.
  const Run* median = find_aggregate(runs, "median");
  const Run* cv = find_aggregate(runs, "cv");
  const Run& shown = median ? *median : runs.front();
  // Throttled when any repetition was; say whether the GPU reported a thermal or hardware slowdown
  // or only ran its clock under 0.9 of the one the peak assumes (clock_assessment.hpp).
  bool throttled = false, slowdown = false;
  for (const auto& r : runs) {
    if (r.run_type != Run::RT_Iteration || counter(r, "throttled", 0) <= 0) continue;
    throttled = true;
    const auto reasons = static_cast<std::uint64_t>(std::max(0.0, counter(r, "throttle_reasons", 0)));
    if (reasons & clock_reason::kThermalOrHardware) slowdown = true;
  }
  if (throttled) ++throttled_;
  if (!table_) return;
  const double tflops = counter(shown, "tflops");
  const double pct = counter(shown, "pct_peak");
  const double gbps = counter(shown, "gbps");
  std::string notes;
  if (throttled) notes += slowdown ? "THROTTLED (thermal/hw slowdown) " : "THROTTLED (low clock) ";
  if (gbps >= 0) notes += fmt::format("{:.0f} GB/s ", gbps);
  const double vs_baseline = counter(shown, "pct_baseline");
  if (vs_baseline >= 0) notes += fmt::format("{:.0f}% of baseline ", vs_baseline);
  std::string split;
  for (const auto& [key, value] : shown.counters) {
    if (key.rfind("phase_pct_", 0) != 0) continue;
    const std::string part = key.substr(10);
    split += fmt::format(" {} {:.0f}%", part, static_cast<double>(value));
    // Memory-bound parts state their bandwidth too.
    const double part_gbps = counter(shown, ("phase_gbps_" + part).c_str());
    if (part_gbps >= 0) split += fmt::format(" ({:.0f} GB/s)", part_gbps);
  }
  if (!split.empty()) notes += "[" + split.substr(1) + "] ";
  if (!shown.report_label.empty()) notes += shown.report_label;
  // A percentage aggregate keeps its fraction in real_accumulated_time (not scaled by time unit).
  const std::string cv_text = cv ? fmt::format("{:.1f}", cv->real_accumulated_time * 100.0) : "-";
  // GetAdjustedRealTime is in the run's time unit; the benchmarks use milliseconds.
  // The median SM clock over the clock the peak assumes: how far the clock explains a %peak.
  const double clock = counter(shown, "clock_ratio");
  fmt::print(table_, "{}{:<64} {:>10.4f} {:>9} {:>7} {:>6} {:>5}  {}{}\n", before, name, shown.GetAdjustedRealTime(),
             tflops >= 0 ? fmt::format("{:.1f}", tflops) : "-", pct >= 0 ? fmt::format("{:.1f}", pct) : "-", cv_text,
             clock >= 0 ? fmt::format("{:.2f}", clock) : "-", notes, after);
  std::fflush(table_);
}

void ResultReporter::add_relative_counters(std::vector<Run>& runs) {
  if (runs.empty()) return;
  const std::string name = runs.front().run_name.str();
  const BenchmarkName parsed = parse_benchmark_name(name);
  const Run* median = find_aggregate(runs, "median");
  const Run& shown = median ? *median : runs.front();
  // τ for FLOP-counting benchmarks; GB/s for memory-bound ones (no tflops counter), whose
  // pct_baseline then compares bandwidths (a cast against a device copy).
  const char* measure = counter(shown, "tflops") > 0 ? "tflops" : "gbps";
  const double tflops = shown.error_occurred ? -1 : counter(shown, measure);
  if (tflops <= 0) return;
  double best_gemm = 0, baseline = 0;
  if (parsed.family != "matmul" && measure == std::string("tflops") && best_gemm_tflops_.count(parsed.dtype)) {
    best_gemm = best_gemm_tflops_[parsed.dtype];
  }
  const auto base = baselines_.find(name);
  if (base != baselines_.end() && measured_tflops_.count(base->second)) baseline = measured_tflops_[base->second];
  // Scaling tflops by a constant: iterations, mean, median and stddev scale; cv does not.
  for (Run& r : runs) {
    const auto it = r.counters.find(measure);
    if (r.error_occurred || it == r.counters.end()) continue;
    const bool ratio = r.run_type == Run::RT_Aggregate && r.aggregate_name == "cv";
    const double value = static_cast<double>(it->second.value);
    if (best_gemm > 0) r.counters["pct_best_gemm"] = ratio ? value : 100.0 * value / best_gemm;
    if (baseline > 0) r.counters["pct_baseline"] = ratio ? value : 100.0 * value / baseline;
  }
  measured_tflops_[name] = tflops;
  if (parsed.family == "matmul" && measure == std::string("tflops") && !parsed.dtype.empty() &&
      tflops > best_gemm_tflops_[parsed.dtype]) {
    best_gemm_tflops_[parsed.dtype] = tflops;
  }
}

namespace {

// Google Benchmark 1.7 reports a benchmark run with repetitions in two calls: its repetitions, then
// their mean, median, stddev and cv, computed only when at least two repetitions succeeded
// (benchmark.cc, Report; statistics.cc, ComputeStats). True for the first call of such a pair.
bool aggregates_follow(const std::vector<benchmark::BenchmarkReporter::Run>& runs) {
  if (runs.empty() || runs.front().repetitions < 2) return false;
  int succeeded = 0;
  for (const auto& r : runs) {
    if (r.run_type != benchmark::BenchmarkReporter::Run::RT_Iteration) return false;
    succeeded += r.error_occurred ? 0 : 1;
  }
  return succeeded >= 2;
}

bool all_aggregates(const std::vector<benchmark::BenchmarkReporter::Run>& runs) {
  for (const auto& r : runs) {
    if (r.run_type != benchmark::BenchmarkReporter::Run::RT_Aggregate) return false;
  }
  return !runs.empty();
}

}  // namespace

void ResultReporter::ReportRuns(const std::vector<Run>& reported) {
  std::vector<Run> runs = reported;
  // Benchmark names are wflops' own: Google Benchmark's "/manual_time" suffix is dropped, so the
  // names in the file are the ones `list`, `compare` and the peer scripts use.
  for (Run& r : runs) r.run_name.time_type.clear();
  // The two calls of one benchmark are one benchmark: one row (the median's) and relative counters
  // computed once, from the median (a repetition's τ would otherwise stand for it until the
  // aggregates came, and could raise the best matmul τ other benchmarks are read against).
  if (!pending_.empty()) {
    if (all_aggregates(runs) && runs.front().run_name.str() == pending_.front().run_name.str()) {
      std::vector<Run> all = std::move(pending_);
      pending_.clear();
      all.insert(all.end(), runs.begin(), runs.end());
      report_benchmark(std::move(all));
      return;
    }
    complete_pending();
  }
  if (aggregates_follow(runs)) {
    pending_ = std::move(runs);
    return;
  }
  report_benchmark(std::move(runs));
}

void ResultReporter::report_benchmark(std::vector<Run> runs) {
  add_relative_counters(runs);
  gb_.ReportRuns(runs);
  print_row(runs);
  write();
}

void ResultReporter::complete_pending() {
  if (pending_.empty()) return;
  std::vector<Run> runs = std::move(pending_);
  pending_.clear();
  report_benchmark(std::move(runs));
}

void ResultReporter::Finalize() {
  complete_pending();
  finished_ = true;
  write();
}

nlohmann::json ResultReporter::document() const {
  // Google Benchmark's JSON so far, closed the way its Finalize() would close it.
  std::string text = gb_json_.str();
  if (text.empty()) {
    text = "{\"context\": {}, \"benchmarks\": []}";
  } else {
    text += "\n  ]\n}\n";
  }
  nlohmann::json doc = nlohmann::json::parse(text);
  // The context given wins over Google Benchmark's own keys: a process that goes on with a run is
  // given the file's context, so the date and host of the run's start stay as they were.
  for (auto it = context_.begin(); it != context_.end(); ++it) doc["context"][it.key()] = it.value();
  doc["context"]["interrupted"] = !finished_;
  if (!earlier_.empty()) {
    nlohmann::json all = earlier_;
    for (const auto& b : doc["benchmarks"]) all.push_back(b);
    doc["benchmarks"] = std::move(all);
  }
  doc["summary"] = result_summary(doc["benchmarks"]);
  return doc;
}

nlohmann::json result_summary(const nlohmann::json& benchmarks) {
  nlohmann::json summary = nlohmann::json::object();
  const nlohmann::json ceiling = matmul_ceiling(benchmarks);
  if (!ceiling.empty()) summary["matmul_max_tflops"] = ceiling;
  const nlohmann::json curves = moe_tau_curves(benchmarks);
  if (!curves.empty()) summary["moe_tau_by_granularity"] = curves;
  return summary;
}

void ResultReporter::write() const {
  if (path_.empty()) return;
  write_file_atomically(path_, document().dump(2) + "\n");
}

namespace {

// Calls fn(run_name, parsed name, entry) once per successful benchmark with a tflops counter: for
// its median aggregate, or its only run when it had no repetitions.
template <typename Fn>
void for_each_measured(const nlohmann::json& benchmarks, Fn fn) {
  for (const auto& b : benchmarks) {
    if (b.value("error_occurred", false) || !b.contains("tflops")) continue;
    const bool aggregate = b.value("run_type", "") == "aggregate";
    if (aggregate ? b.value("aggregate_name", "") != "median" : b.value("repetitions", 1) > 1) continue;
    const std::string run_name = b.value("run_name", b.value("name", ""));
    fn(run_name, parse_benchmark_name(run_name), b);
  }
}

}  // namespace

nlohmann::json matmul_ceiling(const nlohmann::json& benchmarks) {
  nlohmann::json best = nlohmann::json::object();
  for_each_measured(benchmarks, [&](const std::string& run_name, const BenchmarkName& parsed, const nlohmann::json& b) {
    if (parsed.family != "matmul" || parsed.dtype.empty()) return;
    const double tflops = b["tflops"].get<double>();
    const std::string& dtype = parsed.dtype;
    if (!best.contains(dtype) || best[dtype]["tflops"].get<double>() < tflops) {
      best[dtype] = {{"tflops", tflops}, {"benchmark", run_name}};
    }
  });
  return best;
}

nlohmann::json moe_tau_curves(const nlohmann::json& benchmarks) {
  // configuration -> G -> the fastest implementation's point
  std::map<std::string, std::map<double, nlohmann::json>> curves;
  for_each_measured(benchmarks, [&](const std::string& run_name, const BenchmarkName& parsed, const nlohmann::json& b) {
    if (parsed.family != "moe_step") return;
    const auto g = parsed.number("G");
    if (!g) return;
    std::string config = parsed.dtype;
    for (const auto& [key, value] : parsed.params) {
      if (key != "G") config += "/" + key + ":" + value;
    }
    const double tflops = b["tflops"].get<double>();
    nlohmann::json& point = curves[config][*g];
    if (!point.is_null() && point["tflops"].get<double>() >= tflops) return;
    point = {{"G", *g}, {"tflops", tflops}, {"benchmark", run_name}};
    if (b.contains("pct_baseline")) point["pct_baseline"] = b["pct_baseline"];
  });
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [config, points] : curves) {
    nlohmann::json& curve = out[config] = nlohmann::json::array();
    for (const auto& [g, point] : points) curve.push_back(point);
  }
  return out;
}

}  // namespace wflops
