// wflops compare A.json B.json [more.json ...]: the same benchmarks in several result files.
#include <fmt/core.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "errors.hpp"
#include "results/compare.hpp"
#include "results/result_reader.hpp"

namespace wflops::cli {

namespace {

struct CompareArgs {
  std::vector<std::string> files;
  std::string format = "table";
  compare::Options options;
  std::vector<std::string> pairs;  // "THEIRS=OURS"
};

void check_options(const CompareArgs& a) {
  const auto& o = a.options;
  if (!(o.noise_sigmas >= 0 && std::isfinite(o.noise_sigmas))) {
    throw UserError(
        fmt::format("--noise-sigmas {}: expected a finite number of standard deviations, 0 or more", o.noise_sigmas));
  }
  if (!(o.outlier_pct > 0 && o.outlier_pct < 100)) {
    throw UserError(
        fmt::format("--outlier-pct {}: expected a percentage between 0 and 100 (both excluded)", o.outlier_pct));
  }
  if (o.ignore_implementation && !a.pairs.empty()) {
    throw UserError(
        "--pair with --ignore-impl: --ignore-impl already matches every implementation with every "
        "other, so the pairs would do nothing; give one or the other");
  }
}

void run_compare(const CompareArgs& given) {
  CompareArgs a = given;
  check_options(a);
  for (const std::string& p : a.pairs) {
    const auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == p.size() || p.find('/') != std::string::npos) {
      throw UserError(fmt::format("--pair '{}': expected THEIRS=OURS, two implementation words", p));
    }
    a.options.implementation_pairs.emplace_back(p.substr(0, eq), p.substr(eq + 1));
  }
  const compare::Format format = compare::parse_format(a.format);
  std::vector<ResultFile> files;
  for (const auto& path : a.files) files.push_back(read_result_file(path));
  const compare::Report report = compare::compare_results(files, a.options);
  fmt::print("{}", compare::render(report, format));
  std::fflush(stdout);
  // Every format: a person sees them on stderr whatever stdout is redirected to (the JSON and the
  // Markdown also carry them, for whoever reads those later).
  for (const auto& w : report.warnings) fmt::print(stderr, "wflops: warning: {}\n", w);
}

}  // namespace

void add_compare_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<CompareArgs>();
  auto* cmd = app.add_subcommand(
      "compare", "compare result files: tau and % of peak per benchmark, ratio to the first file, outlier GPUs");
  cmd->add_option("files", a->files, "result files (JSON) written by wflops run or a peer script")
      ->required()
      ->expected(2, -1);
  cmd->add_option("--format", a->format, "table, markdown, csv or json")->capture_default_str();
  cmd->add_flag("--ignore-impl", a->options.ignore_implementation,
                "match benchmarks whose names differ only in the implementation part (wflops against a PyTorch peer)");
  cmd->add_option("--pair", a->pairs,
                  "THEIRS=OURS: match implementation THEIRS with OURS (repeatable), e.g. "
                  "--pair torch_compile_gelu_residual=fused_gelu_residual");
  cmd->add_option("--noise-sigmas", a->options.noise_sigmas,
                  "a difference is beyond noise when larger than this many combined standard deviations")
      ->capture_default_str();
  cmd->add_option("--outlier-pct", a->options.outlier_pct,
                  "cluster mode (>= 3 files, one GPU model): flag GPUs this many percent below the median")
      ->capture_default_str();
  cmd->callback([a, &exit_code] {
    run_compare(*a);
    exit_code = 0;
  });
}

}  // namespace wflops::cli
