// `wflops list`: every registered benchmark (or one suite's) with its shape, dtype, FLOPs, bytes
// and the least time it could take at the peaks of a named GPU. Needs no GPU.
#include <fmt/core.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "all_benchmarks.hpp"
#include "cli/commands.hpp"
#include "cli/run_options.hpp"
#include "errors.hpp"
#include "model/peaks.hpp"
#include "run_progress.hpp"

namespace wflops::cli {

namespace {

struct ListOptions {
  std::string suite = "full";
  std::string gpu = "h100-sxm";
  bool json = false;
};

int list_benchmarks(const ListOptions& o) {
  Registry registry;
  register_all_benchmarks(registry);
  if (!registry.suite_names().count(o.suite)) {
    throw UserError(fmt::format("unknown suite '{}' (suites: {})", o.suite, registry.suite_list()));
  }
  const auto peaks = peaks_by_slug(o.gpu);
  if (!peaks) {
    std::string known;
    for (const Peaks& p : peak_table()) known += (known.empty() ? "" : ", ") + p.slug;
    throw UserError(fmt::format("unknown GPU '{}' (known: {})", o.gpu, known));
  }
  const auto specs = registry.suite(o.suite);
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const BenchSpec* s : specs) {
      const auto t = least_time_s(*s, *peaks);
      // "full" holds every benchmark (Registry::suite) without being stored in each one's suites.
      std::set<std::string> suites = s->suites;
      suites.insert("full");
      out.push_back({{"name", s->name},
                     {"family", s->family},
                     {"implementation", s->impl},
                     {"dtype", dtype_name(s->dtype)},
                     {"shape", s->shape},
                     {"flops", s->flops},
                     {"bytes", s->bytes},
                     {"min_time_s", t ? nlohmann::json(*t) : nlohmann::json(nullptr)},
                     {"gpu", o.gpu},
                     {"suites", suites},
                     {"label", s->label},
                     {"baseline", s->baseline.empty() ? nlohmann::json(nullptr) : nlohmann::json(s->baseline)},
                     {"counters", s->counters}});
    }
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  // The name column is as wide as the longest name, so no row pushes its neighbours out of line.
  std::size_t width = std::string_view("benchmark").size();
  for (const BenchSpec* s : specs) width = std::max(width, s->name.size());
  // A quantity a benchmark does not count (the FLOPs of a copy, the bytes of a GEMM) is "-", not 0.
  const auto figure = [](double v, double unit) { return v > 0 ? fmt::format("{:.3f}", v / unit) : "-"; };
  fmt::print("{:<{}} {:>6} {:>12} {:>12} {:>14}  {}\n", "benchmark", width, "dtype", "GFLOP", "MB",
             fmt::format("min us @{}", o.gpu), "label");
  for (const BenchSpec* s : specs) {
    const auto t = least_time_s(*s, *peaks);
    fmt::print("{:<{}} {:>6} {:>12} {:>12} {:>14}  {}\n", s->name, width, dtype_name(s->dtype), figure(s->flops, 1e9),
               figure(s->bytes, 1e6), t ? fmt::format("{:.2f}", *t * 1e6) : "n/a", s->label);
  }
  fmt::print("{} benchmarks in suite '{}'\n", specs.size(), o.suite);
  // What `wflops run --suite` would say it takes: the same plan, with the suite's own repetitions.
  RunOptions run;
  run.suite = o.suite;
  const std::vector<std::string> arguments = benchmark_arguments(run);
  const RepetitionSettings settings = repetition_settings(arguments);
  double seconds = 0;
  for (const auto& [name, s] : planned_benchmarks(runnable_benchmarks(specs, *peaks), arguments, *peaks)) seconds += s;
  fmt::print("a run of it: about {} on {} by estimate ({} repetitions of at least {} s each)\n", duration_text(seconds),
             o.gpu, settings.repetitions, settings.min_time_s);
  return kExitOk;
}

}  // namespace

void add_list_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ListOptions>();
  CLI::App* cmd =
      app.add_subcommand("list", "List benchmarks with shape, dtype, FLOPs, bytes and least time (no GPU needed)");
  cmd->add_option("--suite", o->suite, "Only this suite (default: full, every benchmark)");
  cmd->add_option("--gpu", o->gpu, "GPU slug whose peaks give the least time (default h100-sxm)");
  cmd->add_flag("--json", o->json, "Print a JSON array");
  cmd->callback([o, &exit_code] { exit_code = list_benchmarks(*o); });
}

}  // namespace wflops::cli
