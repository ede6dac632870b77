// How far a `wflops run` has got: the number of benchmarks it will run and roughly how long they
// take (said once at the start), and on each row of the table "[i/N]" and, on a terminal, the time
// left. The estimate is a rough one, from what is known before anything ran: each benchmark's least
// time at the GPU's peaks (what `wflops list` shows), the repetitions and their least duration, and
// a fixed cost per benchmark for what is not timed (allocation, verification, warm-up, autotuning).
// The result file never carries any of it.
#pragma once
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "model/peaks.hpp"
#include "registry.hpp"

namespace wflops {

// The value of the last "--benchmark_<name>=VALUE" of `arguments` (Google Benchmark lets a later
// flag win); empty when there is none.
std::optional<std::string> last_flag(const std::vector<std::string>& arguments, const std::string& name);

// The repetitions and least time per repetition Google Benchmark is given: the last
// --benchmark_repetitions= and --benchmark_min_time= of `arguments` (benchmark_arguments()), which
// the suite's defaults come before.
struct RepetitionSettings {
  int repetitions = 1;
  double min_time_s = 0.5;
};
RepetitionSettings repetition_settings(const std::vector<std::string>& arguments);

// The least time one iteration of `spec` can take at `peaks`: limited by the dtype's peak FLOP/s or
// by the memory bandwidth, whichever binds (the figure `wflops list` shows). Empty when the GPU
// lacks the dtype.
std::optional<double> least_time_s(const BenchSpec& spec, const Peaks& peaks);

// Wall-clock seconds `spec` is estimated to take in a run, set-up included.
double estimated_seconds(const BenchSpec& spec, const Peaks& peaks, const RepetitionSettings& settings);

// The benchmarks of `specs` whose dtype the GPU has (the others are skipped with a line saying so).
std::vector<const BenchSpec*> runnable_benchmarks(const std::vector<const BenchSpec*>& specs, const Peaks& peaks);

// The benchmarks of `specs` that the last --benchmark_filter= of `flags` selects, in order, matched
// as Google Benchmark 1.7 matches them: a POSIX extended regular expression searched for in the
// name it registers ("NAME/manual_time"), a leading '-' negating it, "" or "all" selecting all.
// The filter was checked to be a valid expression before (check_run_arguments).
std::vector<const BenchSpec*> filtered(const std::vector<const BenchSpec*>& specs,
                                       const std::vector<std::string>& flags);

// The benchmarks a run will run, in order, each with its estimated seconds: those of `specs` that
// the filter in `arguments` (benchmark_arguments()) selects. The parent that says the count first
// and every worker process that numbers rows use this one list.
std::vector<std::pair<std::string, double>> planned_benchmarks(const std::vector<const BenchSpec*>& specs,
                                                               const std::vector<std::string>& arguments,
                                                               const Peaks& peaks);

// A duration for people: "40 s", "12 min", "2 h 05 min".
std::string duration_text(double seconds);

// The line the run starts with: "60 benchmarks to run, 3 repetitions of at least 0.2 s each: about
// 6 min by estimate".
std::string run_plan_line(int benchmarks, const RepetitionSettings& settings, double estimated_s);

class RunProgress {
 public:
  using Clock = std::chrono::steady_clock;
  // `planned`: every benchmark of the run in order, with its estimated seconds. `settled`: the
  // benchmarks already in the result file (an earlier process of the same run measured them).
  // `time_left`: whether rows carry the estimated time left (on a terminal only).
  RunProgress(std::vector<std::pair<std::string, double>> planned, const std::set<std::string>& settled, bool time_left,
              Clock::time_point start = Clock::now());

  int total() const { return static_cast<int>(planned_.size()); }
  // As wide as a row's prefix, for the table's heading.
  std::string heading() const;
  // For the row of `name`, which is now done: the text before its name ("[ 3/42] ") and after the
  // row ("  about 12 min left", or "" when not on a terminal or nothing is left). The time left is
  // the estimate of what is left, scaled by how the benchmarks done in this process compared with
  // their estimates.
  std::pair<std::string, std::string> row(const std::string& name, Clock::time_point now = Clock::now());

 private:
  std::string prefix(int done) const;

  std::vector<std::pair<std::string, double>> planned_;
  std::map<std::string, double> estimate_;
  std::set<std::string> done_;
  bool time_left_;
  Clock::time_point start_;
  double estimated_done_here_ = 0;  // estimates of the rows done through this object
};

}  // namespace wflops
