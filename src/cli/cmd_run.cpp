// `wflops run`: runs the benchmarks of a suite on the GPU, prints a table and writes the result
// file (results/<gpu-slug>-<yyyymmdd-hhmmss>.json or --out FILE), never overwriting one. Every
// argument is checked before the GPU is looked for; the benchmarks run in worker processes
// (run_supervisor.hpp), so a fault costs one benchmark, not the run.
#include <fmt/core.h>
#include <unistd.h>

#include <ctime>
#include <memory>
#include <optional>

#include "all_benchmarks.hpp"
#include "cli/commands.hpp"
#include "cli/run_options.hpp"
#include "cli/run_supervisor.hpp"
#include "cli/run_test_hook.hpp"
#include "cli/run_worker.hpp"
#include "context.hpp"
#include "cuda/device_info.hpp"
#include "cuda/harness.hpp"
#include "errors.hpp"
#include "model/peaks.hpp"
#include "results/result_file.hpp"
#include "results/result_reporter.hpp"
#include "run_progress.hpp"

namespace wflops::cli {

namespace {

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

int run_benchmarks(const RunOptions& o) {
  Registry registry;
  register_all_benchmarks(registry);
  // The test hook (fake CPU benchmarks, no GPU) is read first so that its own mistakes show.
  const std::optional<FakeRun> fake = fake_run_from_env();
  check_run_arguments(o, registry.suite_names(), registry.suite_list());
  const std::vector<std::string> gb_args = benchmark_arguments(o);
  std::vector<BenchSpec> fakes;
  std::vector<const BenchSpec*> suite_specs;
  if (fake) {
    fakes = fake_benchmarks(*fake);
    for (const BenchSpec& s : fakes) suite_specs.push_back(&s);
  } else {
    suite_specs = registry.suite(o.suite);
  }
  // A filter that selects nothing is bad input too, said before the GPU is looked for.
  if (filtered(suite_specs, gb_args).empty()) {
    throw UserError(fmt::format("no benchmark of suite '{}' matches the --benchmark_filter given", o.suite));
  }

  DeviceDescription dev;
  Peaks peaks;
  std::vector<const BenchSpec*> run_specs = suite_specs;  // what the workers will run, before the filter
  if (fake) {
    dev = fake_device();
    peaks = fake_peaks();
  } else {
    // No GPU: one clear line, exit code 2, nothing written.
    const std::string why = gpu_unavailable_reason();
    if (!why.empty()) {
      fmt::print(stderr, "wflops: no usable GPU: {}\n", why);
      return kExitNoGpu;
    }
    int count = 0;
    cudaGetDeviceCount(&count);
    if (o.device >= count) {
      throw UserError(fmt::format("--device {}: this machine has {} visible GPU(s)", o.device, count));
    }
    // Device properties and attributes only: this process makes no CUDA context of its own, which
    // would hold GPU memory beside the workers' (and block them on a GPU in exclusive-process mode).
    dev = query_device(o.device);
    peaks = peaks_for_device(dev);
    apply_peak_overrides(peaks, o.peaks);

    int runnable = 0;
    std::set<std::string> lacking;
    for (const BenchSpec* spec : registry.suite(o.suite)) {
      if (peaks.peak(spec->dtype)) {
        ++runnable;
      } else {
        lacking.insert(std::string(dtype_name(spec->dtype)));
      }
    }
    for (const auto& t : lacking) {
      fmt::print(stderr, "wflops: skipping the {} benchmarks: {} (cc {}) has no {} tensor cores\n", t, dev.name,
                 dev.cc(), t);
    }
    if (runnable == 0) throw UserError(fmt::format("suite '{}' has no benchmark this GPU can run", o.suite));
    run_specs = runnable_benchmarks(suite_specs, peaks);
  }

  // What will run and roughly how long it takes, said before anything is written; the workers
  // count their rows against the same list (run_worker.cpp).
  const std::vector<std::pair<std::string, double>> planned = planned_benchmarks(run_specs, gb_args, peaks);
  double estimate = 0;
  for (const auto& [name, seconds] : planned) estimate += seconds;
  if (planned.empty()) {
    throw UserError(
        fmt::format("no benchmark of suite '{}' that this GPU can run matches the --benchmark_filter "
                    "given",
                    o.suite));
  }

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
  {
    // The file's first state, valid JSON before any worker starts: the context, no benchmarks.
    ResultReporter first(path, make_context(dev, peaks, RunInfo{host_name(), o.suite, l2_policy()}), nullptr);
  }
  fmt::print("{}\n", run_plan_line(static_cast<int>(planned.size()), repetition_settings(gb_args), estimate));
  std::fflush(stdout);
  return supervise_run(o, path, planned);
}

}  // namespace

void add_run_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run",
                                     "Run benchmarks on the GPU; print a table and write a result file.\n"
                                     "Google Benchmark flags (--benchmark_filter=REGEX, ...) pass through.");
  cmd->add_option("--suite", o->suite,
                  "Suite to run: quick (default; a few minutes on an H100), full, seed (the "
                  "reference A100 table), a family's (mlp, cast, attention, moe), or a "
                  "matmul shape set (square, transformer, max)");
  cmd->add_option("--out", o->out, "Write the results to FILE (refused if FILE exists)");
  cmd->add_option("--results-dir", o->results_dir, "Directory for <gpu-slug>-<time>.json (default results)");
  cmd->add_option("--peak", o->peaks, "Override a peak: DTYPE=TFLOPS or gbps=GBPS (repeatable)");
  cmd->add_option("--device", o->device, "CUDA device index (default 0)");
  // How `wflops run` starts its own worker processes (run_worker.hpp); hidden from the help (an
  // empty group), not for users.
  cmd->add_option("--worker-fd", o->worker_fd)->group("");
  cmd->add_option("--worker-file", o->worker_file)->group("");
  cmd->allow_extras();
  cmd->callback([o, cmd, &exit_code] {
    o->benchmark_flags = cmd->remaining();
    exit_code = o->worker_fd >= 0 ? run_worker(*o) : run_benchmarks(*o);
  });
}

}  // namespace wflops::cli
