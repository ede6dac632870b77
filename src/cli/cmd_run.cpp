// `wflops run`: runs the benchmarks of a suite on the GPU, prints a table and writes the result
// file (results/<gpu-slug>-<yyyymmdd-hhmmss>.json or --out FILE), never overwriting one.
#include <fmt/core.h>
#include <unistd.h>

#include <csignal>
#include <ctime>
#include <memory>

#include "cli/commands.hpp"
#include "context.hpp"
#include "cuda/device_info.hpp"
#include "cuda/harness.hpp"
#include "errors.hpp"
#include "peaks.hpp"
#include "registry.hpp"
#include "result_file.hpp"
#include "result_reporter.hpp"

namespace wflops::cli {

namespace {

struct RunOptions {
  std::string suite = "quick";
  std::string out;
  std::string results_dir = "results";
  std::vector<std::string> peaks;
  int device = 0;
  std::vector<std::string> benchmark_flags;
};

// Defaults per suite, given to Google Benchmark before the user's own --benchmark_* flags (which
// therefore win): repetitions give the median and spread of every result.
std::vector<std::string> default_benchmark_flags(const std::string& suite) {
  if (suite == "quick" || suite == "seed") return {"--benchmark_repetitions=3", "--benchmark_min_time=0.2"};
  return {"--benchmark_repetitions=5", "--benchmark_min_time=0.5"};
}

// The result file already holds every finished benchmark and says interrupted = true until the
// run ends, so on SIGINT/SIGTERM there is nothing left to save: say so and leave at once
// (write and _exit are async-signal-safe).
void on_signal(int sig) {
  const char msg[] = "\nwflops: interrupted; the result file keeps every finished benchmark (interrupted: true)\n";
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
  _exit(128 + sig);
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

int run_benchmarks(const RunOptions& o) {
  Registry registry;
  register_all_benchmarks(registry);
  if (!registry.suite_names().count(o.suite)) {
    throw UserError(fmt::format("unknown suite '{}' (suites: {})", o.suite, registry.suite_list()));
  }
  for (const std::string& f : o.benchmark_flags) {
    if (f.rfind("--benchmark_", 0) != 0) {
      throw UserError(fmt::format("unknown argument '{}' for run (Google Benchmark flags start with --benchmark_)", f));
    }
  }

  // No GPU: one clear line, exit code 2, nothing written.
  const std::string why = gpu_unavailable_reason();
  if (!why.empty()) {
    fmt::print(stderr, "wflops: no usable GPU: {}\n", why);
    return kExitNoGpu;
  }
  int count = 0;
  cudaGetDeviceCount(&count);
  if (o.device < 0 || o.device >= count) {
    throw UserError(fmt::format("--device {}: this machine has {} visible GPU(s)", o.device, count));
  }
  const DeviceDescription dev = query_device(o.device);
  Peaks peaks = peaks_for_device(dev);
  apply_peak_overrides(peaks, o.peaks);

  // Google Benchmark parses its flags from an argv of its own.
  std::vector<std::string> args = {"wflops"};
  for (const auto& f : default_benchmark_flags(o.suite)) args.push_back(f);
  args.insert(args.end(), o.benchmark_flags.begin(), o.benchmark_flags.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  int argc = static_cast<int>(argv.size());
  benchmark::Initialize(&argc, argv.data());
  if (benchmark::ReportUnrecognizedArguments(argc, argv.data())) return kExitError;

  int registered = 0;
  std::set<std::string> lacking;
  for (const BenchSpec* spec : registry.suite(o.suite)) {
    if (!peaks.peak(spec->dtype)) {
      lacking.insert(std::string(dtype_name(spec->dtype)));
      continue;
    }
    const BenchSpec copy = *spec;
    benchmark::RegisterBenchmark(copy.name.c_str(), [copy](benchmark::State& st) { copy.body(st, copy); })
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
    ++registered;
  }
  for (const auto& t : lacking) {
    fmt::print(stderr, "wflops: skipping the {} benchmarks: {} (cc {}) has no {} tensor cores\n", t, dev.name,
               dev.cc(), t);
  }
  if (registered == 0) throw UserError(fmt::format("suite '{}' has no benchmark this GPU can run", o.suite));

  std::filesystem::path path;
  if (!o.out.empty()) {
    path = o.out;
    create_result_file_at(path);
  } else {
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    path = create_result_file(o.results_dir, peaks.slug, local);
  }

  const nlohmann::json context = make_context(dev, peaks, RunInfo{host_name(), o.suite, l2_policy()});
  for (const auto& [key, value] : context_as_strings(context)) benchmark::AddCustomContext(key, value);

  ResultReporter reporter(path, context, stdout);
  std::map<std::string, std::string> baselines;
  for (const BenchSpec& spec : registry.all()) {
    if (!spec.baseline.empty()) baselines[spec.name] = spec.baseline;
  }
  reporter.set_baselines(std::move(baselines));
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  harness_init(dev, peaks);
  const std::size_t ran = benchmark::RunSpecifiedBenchmarks(&reporter);
  harness_release();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (ran == 0) {
    std::filesystem::remove(path);  // ours, created above and holding no result
    throw UserError(fmt::format("no benchmark of suite '{}' matches the --benchmark_filter given", o.suite));
  }

  const nlohmann::json doc = reporter.document();
  if (doc["summary"].contains("matmul_max_tflops")) {
    for (const auto& [dtype, best] : doc["summary"]["matmul_max_tflops"].items()) {
      fmt::print("best {} matmul: {:.1f} TFLOP/s ({})\n", dtype, best["tflops"].get<double>(),
                 best["benchmark"].get<std::string>());
    }
  }
  if (reporter.throttled()) {
    fmt::print("{} benchmark(s) ran while the GPU was throttled (marked THROTTLED, counter throttled = 1)\n",
               reporter.throttled());
  }
  fmt::print("results written to {}\n", path.string());
  if (reporter.errors()) {
    fmt::print(stderr, "wflops: {} benchmark(s) reported an error (see the table and the result file)\n",
               reporter.errors());
    return kExitError;
  }
  return kExitOk;
}

}  // namespace

void add_run_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Run benchmarks on the GPU; print a table and write a result file.\n"
                                            "Google Benchmark flags (--benchmark_filter=REGEX, ...) pass through.");
  cmd->add_option("--suite", o->suite, "Suite to run: quick (default; a few minutes on an H100), full, seed (the "
                                       "reference A100 table), a family's (mlp, cast, attention, moe), or a "
                                       "matmul shape set (square, transformer, max)");
  cmd->add_option("--out", o->out, "Write the results to FILE (refused if FILE exists)");
  cmd->add_option("--results-dir", o->results_dir, "Directory for <gpu-slug>-<time>.json (default results)");
  cmd->add_option("--peak", o->peaks, "Override a peak: DTYPE=TFLOPS or gbps=GBPS (repeatable)");
  cmd->add_option("--device", o->device, "CUDA device index (default 0)");
  cmd->allow_extras();
  cmd->callback([o, cmd, &exit_code] {
    o->benchmark_flags = cmd->remaining();
    exit_code = run_benchmarks(*o);
  });
}

}  // namespace wflops::cli
