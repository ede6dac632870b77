#include "cli/run_worker.hpp"

#include <cuda_runtime.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>

#include "all_benchmarks.hpp"
#include "cli/run_test_hook.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/device_info.hpp"
#include "cuda/harness.hpp"
#include "errors.hpp"
#include "model/peaks.hpp"
#include "results/result_file.hpp"
#include "results/result_reporter.hpp"
#include "run_progress.hpp"

namespace wflops::cli {

namespace {

class Progress {
 public:
  explicit Progress(int fd) : fd_(fd) {}
  // One write(2) per line: a line shorter than PIPE_BUF reaches the parent whole.
  void send(const std::string& line) const {
    const std::string text = line + "\n";
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      // A parent that is gone takes the worker with it (SIGPIPE): no one would go on with the run,
      // and the result file already holds every finished benchmark.
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }

 private:
  int fd_;
};

// "" while the CUDA context works; otherwise the error that makes it unusable. Errors from a
// device fault are sticky: "any further CUDA work will return the same error. To continue using
// CUDA, the process must be terminated and relaunched" (CUDA runtime API, enum cudaError, e.g.
// cudaErrorIllegalAddress in driver_types.h). cudaGetLastError resets an error that is not sticky,
// so an error that a second synchronisation still returns is one this process cannot get past.
std::string cuda_context_lost() {
  if (cudaDeviceSynchronize() == cudaSuccess) return "";
  (void)cudaGetLastError();
  const cudaError_t e = cudaDeviceSynchronize();
  if (e == cudaSuccess) {
    (void)cudaGetLastError();
    return "";
  }
  return cuda_error_text(e);
}

// Passes everything to the result reporter, checking the CUDA context after each benchmark. When
// the context is lost, the benchmark's runs are recorded as failed (with the reason: the fault came
// from its own work, so its figures cannot be trusted either) and this process ends, since no
// later benchmark could run in it.
class WorkerReporter : public benchmark::BenchmarkReporter {
 public:
  WorkerReporter(ResultReporter& inner, const Progress& progress, std::function<std::string()> context_lost)
      : inner_(inner), progress_(progress), context_lost_(std::move(context_lost)) {}

  bool ReportContext(const Context& context) override { return inner_.ReportContext(context); }

  void ReportRuns(const std::vector<Run>& runs) override {
    const std::string lost = context_lost_();
    const std::string name = runs.empty() ? "" : runs.front().run_name.function_name;
    if (lost.empty()) {
      inner_.ReportRuns(runs);
      // Repetitions held back for their aggregates are not in the file yet: the benchmark ends
      // with the aggregates, which Google Benchmark reports next.
      if (!inner_.pending()) report_end(name);
      return;
    }
    std::vector<Run> failed = runs;
    for (Run& r : failed) {
      if (r.error_occurred) continue;
      r.error_occurred = true;
      r.error_message = "the CUDA context was unusable after this benchmark: " + lost;
      r.counters.clear();
    }
    inner_.ReportRuns(failed);
    progress_.send(fmt::format("throttled {}", inner_.throttled()));
    progress_.send(fmt::format("lost {}\t{}", name, lost));
    std::fflush(stdout);
    // Destructors would make CUDA calls on the broken context; the file holds everything already.
    std::_Exit(kExitContextLost);
  }

  // The parent ends the run (interrupted: false) once every benchmark is settled; a worker does not.
  // What the reporter still holds back goes into the file.
  void Finalize() override {
    if (!inner_.pending()) return;
    inner_.complete_pending();
    report_end("");
  }

 private:
  void report_end(const std::string& name) const {
    progress_.send(fmt::format("throttled {}", inner_.throttled()));
    progress_.send("end " + name);
  }

  ResultReporter& inner_;
  const Progress& progress_;
  std::function<std::string()> context_lost_;
};

// Tells the parent when a benchmark starts: its first call (Google Benchmark calls the body again
// for each repetition and each trial iteration count).
struct StartTracker {
  const Progress* progress = nullptr;
  std::string current;
  int started = 0;
  void start(const std::string& name) {
    if (name == current) return;
    current = name;
    ++started;
    progress->send("begin " + name);
  }
};

}  // namespace

int run_worker(const RunOptions& o) {
  const Progress progress(o.worker_fd);
  const std::optional<FakeRun> fake = fake_run_from_env();
  // The parent wrote the file (its context, and what earlier workers of this run measured).
  const nlohmann::json doc = read_result_document(o.worker_file);
  const std::set<std::string> settled = benchmark_run_names(doc);

  std::vector<BenchSpec> todo;
  std::map<std::string, std::string> baselines;
  DeviceDescription dev;
  Peaks peaks;
  Registry registry;
  std::vector<BenchSpec> fakes;
  std::vector<const BenchSpec*> run_specs;  // every benchmark of the run, settled or not
  if (fake) {
    fakes = fake_benchmarks(*fake);
    peaks = fake_peaks();
    for (const BenchSpec& s : fakes) run_specs.push_back(&s);
  } else {
    dev = query_device(o.device);
    peaks = peaks_for_device(dev);
    apply_peak_overrides(peaks, o.peaks);
    register_all_benchmarks(registry);
    run_specs = runnable_benchmarks(registry.suite(o.suite), peaks);
    for (const BenchSpec& spec : registry.all()) {
      if (!spec.baseline.empty()) baselines[spec.name] = spec.baseline;
    }
  }
  for (const BenchSpec* spec : run_specs) {
    if (!settled.count(spec->name)) todo.push_back(*spec);
  }
  if (todo.empty()) {
    progress.send("done 0");
    return kExitOk;
  }

  std::vector<std::string> args = benchmark_arguments(o);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  int argc = static_cast<int>(argv.size());
  benchmark::Initialize(&argc, argv.data());  // the parent checked these flags already

  StartTracker tracker;
  tracker.progress = &progress;
  for (const BenchSpec& spec : todo) {
    benchmark::RegisterBenchmark(spec.name.c_str(),
                                 [spec, &tracker, &fake](benchmark::State& st) {
                                   tracker.start(spec.name);
                                   fake ? run_fake_benchmark(st, *fake, spec) : measure(st, spec, spec.make);
                                 })
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }

  ResultReporter reporter(o.worker_file, doc.value("context", nlohmann::json::object()), stdout,
                          doc.value("benchmarks", nlohmann::json::array()));
  reporter.set_baselines(std::move(baselines));
  // The same list as the parent's first line (cmd_run.cpp), so that the rows of every process of
  // the run count on from the benchmarks already in the file.
  auto table_progress = std::make_shared<RunProgress>(planned_benchmarks(run_specs, benchmark_arguments(o), peaks),
                                                      settled, ::isatty(STDOUT_FILENO) == 1);
  reporter.set_table_progress(
      {table_progress->heading(), [table_progress](const std::string& name) { return table_progress->row(name); }});
  WorkerReporter worker(
      reporter, progress,
      fake ? std::function<std::string()>(fake_context_lost) : std::function<std::string()>(cuda_context_lost));
  // Google Benchmark's own complaint when the filter matches nothing goes here, not to the user:
  // the parent says it once, for the whole run.
  std::ostringstream gb_errors;
  worker.SetErrorStream(&gb_errors);
  if (!fake) harness_init(dev, peaks);
  benchmark::RunSpecifiedBenchmarks(&worker);
  if (!fake) harness_release();
  progress.send(fmt::format("done {}", tracker.started));
  return kExitOk;
}

}  // namespace wflops::cli
