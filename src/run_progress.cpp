#include "run_progress.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <regex>

namespace wflops {

namespace {

// What a benchmark costs besides its timed repetitions, in seconds: allocating and filling its
// inputs and their L2-rotation copies and verifying one run against the fp64 host reference (a few
// tenths), the warm-up (at least 0.2 s, at most 1 s, until the SM clock is stable: batch_plan.hpp),
// counting its stream operations and, for cublaslt_auto, timing 8 candidates over 5 rounds.
// A guess to be checked against a timed run; it dominates short benchmarks.
constexpr double kSetupSeconds = 1.0;
// What a real iteration takes against the least time at the peaks: well-tuned GEMMs reach 60-80% of
// the peak, memory-bound and fused steps less, so half the peak stands for a typical benchmark.
constexpr double kShareOfPeak = 0.5;
// Wall time of a repetition over its least duration: Google Benchmark aims its iteration count at
// 1.4 times the least time (benchmark_runner.cc, PredictNumItersNeeded), the first repetition
// searches for that count with growing trial runs, and the host works between timed batches.
constexpr double kRepetitionWall = 1.5;
// Iterations the harness times once more, part by part, for a step's time split (harness.cpp).
constexpr double kPhaseIterations = 9;

}  // namespace

std::optional<std::string> last_flag(const std::vector<std::string>& arguments, const std::string& name) {
  const std::string prefix = "--benchmark_" + name + "=";
  std::optional<std::string> value;
  for (const std::string& a : arguments) {
    if (a.rfind(prefix, 0) == 0) value = a.substr(prefix.size());
  }
  return value;
}

RepetitionSettings repetition_settings(const std::vector<std::string>& arguments) {
  RepetitionSettings s;
  if (const auto v = last_flag(arguments, "repetitions")) {
    char* end = nullptr;
    const long n = std::strtol(v->c_str(), &end, 10);
    if (end != v->c_str() && *end == '\0' && n > 0 && n < 1000000) s.repetitions = static_cast<int>(n);
  }
  if (const auto v = last_flag(arguments, "min_time")) {
    char* end = nullptr;
    const double t = std::strtod(v->c_str(), &end);
    if (end != v->c_str() && *end == '\0' && t > 0 && std::isfinite(t)) s.min_time_s = t;
  }
  return s;
}

std::optional<double> least_time_s(const BenchSpec& spec, const Peaks& peaks) {
  const auto peak = peaks.peak(spec.dtype);
  if (!peak) return std::nullopt;
  double t = spec.flops / (*peak * 1e12);
  if (spec.bytes > 0 && peaks.gbps > 0) t = std::max(t, spec.bytes / (peaks.gbps * 1e9));
  return t;
}

double estimated_seconds(const BenchSpec& spec, const Peaks& peaks, const RepetitionSettings& settings) {
  const double iteration = least_time_s(spec, peaks).value_or(0) / kShareOfPeak;
  // An iteration longer than the least duration is run once per repetition; shorter ones are
  // repeated until the repetition lasts at least min_time.
  const double repetition = iteration >= settings.min_time_s ? iteration : kRepetitionWall * settings.min_time_s;
  // The families whose every benchmark records a time split (their workloads' has_phases()).
  const bool has_phases = spec.family == "mlp_step" || spec.family == "moe_step" || spec.family == "model_step";
  return kSetupSeconds + settings.repetitions * repetition + (has_phases ? kPhaseIterations * iteration : 0.0);
}

std::vector<const BenchSpec*> runnable_benchmarks(const std::vector<const BenchSpec*>& specs, const Peaks& peaks) {
  std::vector<const BenchSpec*> out;
  for (const BenchSpec* s : specs) {
    if (peaks.peak(s->dtype)) out.push_back(s);
  }
  return out;
}

std::vector<const BenchSpec*> filtered(const std::vector<const BenchSpec*>& specs,
                                       const std::vector<std::string>& flags) {
  std::string filter = last_flag(flags, "filter").value_or("");
  const bool negative = !filter.empty() && filter[0] == '-';
  if (negative) filter.erase(0, 1);
  if (filter.empty() || filter == "all") filter = ".";
  const std::regex re(filter, std::regex::extended);
  std::vector<const BenchSpec*> out;
  for (const BenchSpec* s : specs) {
    // The benchmarks are registered with UseManualTime, which adds "/manual_time" to the name
    // Google Benchmark matches the filter against.
    if (std::regex_search(s->name + "/manual_time", re) != negative) out.push_back(s);
  }
  return out;
}

std::vector<std::pair<std::string, double>> planned_benchmarks(const std::vector<const BenchSpec*>& specs,
                                                               const std::vector<std::string>& arguments,
                                                               const Peaks& peaks) {
  const RepetitionSettings settings = repetition_settings(arguments);
  std::vector<std::pair<std::string, double>> planned;
  for (const BenchSpec* spec : filtered(specs, arguments)) {
    planned.emplace_back(spec->name, estimated_seconds(*spec, peaks, settings));
  }
  return planned;
}

std::string duration_text(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  if (seconds < 60) return fmt::format("{:.0f} s", std::max(1.0, std::round(seconds)));
  const long minutes = std::lround(seconds / 60.0);
  if (minutes < 60) return fmt::format("{} min", minutes);
  return fmt::format("{} h {:02d} min", minutes / 60, static_cast<int>(minutes % 60));
}

std::string run_plan_line(int benchmarks, const RepetitionSettings& settings, double estimated_s) {
  return fmt::format("{} benchmark{} to run, {} repetition{} of at least {} s each: about {} by estimate", benchmarks,
                     benchmarks == 1 ? "" : "s", settings.repetitions, settings.repetitions == 1 ? "" : "s",
                     settings.min_time_s, duration_text(estimated_s));
}

RunProgress::RunProgress(std::vector<std::pair<std::string, double>> planned, const std::set<std::string>& settled,
                         bool time_left, Clock::time_point start)
    : planned_(std::move(planned)), time_left_(time_left), start_(start) {
  for (const auto& [name, seconds] : planned_) {
    estimate_[name] = seconds;
    if (settled.count(name)) done_.insert(name);
  }
}

std::string RunProgress::prefix(int done) const {
  const int width = static_cast<int>(std::to_string(total()).size());
  return fmt::format("[{:>{}}/{}] ", done, width, total());
}

std::string RunProgress::heading() const { return std::string(prefix(total()).size(), ' '); }

std::pair<std::string, std::string> RunProgress::row(const std::string& name, Clock::time_point now) {
  const auto it = estimate_.find(name);
  if (it != estimate_.end() && done_.insert(name).second) estimated_done_here_ += it->second;
  const int done = static_cast<int>(done_.size());
  if (!time_left_ || done >= total()) return {prefix(done), ""};
  double left = 0;
  for (const auto& [planned, seconds] : planned_) {
    if (!done_.count(planned)) left += seconds;
  }
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double scale = estimated_done_here_ > 0 && elapsed > 0 ? elapsed / estimated_done_here_ : 1.0;
  return {prefix(done), fmt::format("  about {} left", duration_text(left * scale))};
}

}  // namespace wflops
