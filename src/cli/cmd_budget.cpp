// wflops budget: how long a training run takes on K GPUs at a given or measured tau, or how many
// FLOPs K GPUs deliver in X days (tau * T = C, docs/conventions.md).
#include <fmt/core.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "errors.hpp"
#include "model/budget.hpp"
#include "model/flops.hpp"
#include "model/flops_transformer.hpp"
#include "results/breakdown.hpp"
#include "results/result_reader.hpp"

namespace wflops::cli {

namespace {

struct BudgetArgs {
  double params = 0, tokens = 0, gpus = 0, tflops = 0, days = 0;
  std::string results, benchmark;
  ModelOptions model;
  bool json = false;
  CommandLine line;
};

struct Tau {
  double tflops = 0;
  std::string source;  // "--tflops" or "<benchmark> in <file>"
  // With --results: the datasheet peak of the benchmark's dtype on the file's GPU, the naive
  // estimate a planner gets from the datasheet (absent when the file does not state it).
  std::optional<double> peak_tflops;
  std::string peak_what;  // "bf16 on NVIDIA H100 80GB HBM3"
};

// The benchmark whose tau --results gives: --benchmark, or the file's model step when it has
// exactly one (a whole training step's tau is the one a run's time follows).
std::string results_benchmark(const BudgetArgs& a, const ResultFile& file) {
  if (a.line.gave("--benchmark")) return a.benchmark;
  const std::vector<std::string> steps = model_step_names(file);
  if (steps.size() == 1) return steps.front();
  if (steps.empty()) {
    throw UserError(
        fmt::format("--results needs --benchmark NAME: which benchmark's tau to use ('{}' has no model "
                    "step to take by default)",
                    a.results));
  }
  std::string names;
  for (const std::string& s : steps) names += (names.empty() ? "" : ", ") + s;
  throw UserError(
      fmt::format("'{}' has {} model steps; choose one with --benchmark: {}", a.results, steps.size(), names));
}

// tau per GPU: given (--tflops) or measured (--results FILE [--benchmark NAME]), exactly one.
Tau resolve_tau(const BudgetArgs& a) {
  if (a.line.gave("--tflops") && a.line.gave("--results")) {
    throw UserError("give either --tflops or --results (with --benchmark), not both");
  }
  if (a.line.gave("--tflops")) {
    if (a.line.gave("--benchmark")) throw UserError("--benchmark chooses a benchmark of --results; --tflops has none");
    budget::require_positive_at_most(a.tflops, "--tflops", budget::kMaxTflopsPerGpu);
    return {a.tflops, "--tflops", std::nullopt, ""};
  }
  if (a.line.gave("--results")) {
    const ResultFile file = read_result_file(a.results);
    const std::string name = results_benchmark(a, file);
    Tau t{measured_tflops(file, name), fmt::format("{} in {}", name, a.results), std::nullopt, ""};
    const std::string dtype = parse_benchmark_name(name).dtype;
    if (const auto peak = file.context_number("peak_tflops_" + dtype); peak && *peak > 0) {
      t.peak_tflops = *peak;
      t.peak_what = fmt::format("{} on {}", dtype, file.context_text("gpu_name"));
    }
    return t;
  }
  throw UserError("give the TFLOP/s per GPU: --tflops T, or --results FILE [--benchmark NAME]");
}

// FLOPs per token of the model: 6N from --params, or the params command's figure from a shape.
struct PerToken {
  double flops = 0;
  std::string what;
};
std::optional<PerToken> per_token(const BudgetArgs& a) {
  const bool shape = a.model.given();
  if (shape && a.line.gave("--params"))
    throw UserError("give either --params or a model shape (--hidden ...), not both");
  if (a.line.gave("--params")) {
    budget::require_positive_at_most(a.params, "--params", budget::kMaxParams);
    return PerToken{flops::training_run(a.params, 1.0), fmt::format("6N, N = {:.4g}", a.params)};
  }
  if (shape) {
    return PerToken{flops::transformer_flops_per_token(a.model.shape()).total, "the model's training FLOPs per token"};
  }
  return std::nullopt;
}

void run_budget(const BudgetArgs& a) {
  nlohmann::json out;
  budget::require_count(a.gpus, "--gpus", budget::kMaxGpus);
  const Tau tau = resolve_tau(a);
  const auto model = per_token(a);
  out["gpus"] = a.gpus;
  out["tflops_per_gpu"] = tau.tflops;
  out["tflops_source"] = tau.source;

  if (a.line.gave("--days")) {
    // Budget: what K GPUs at tau deliver in X days.
    if (a.line.gave("--tokens")) {
      throw UserError("--days asks for the FLOPs of a time budget; --tokens asks for the time of a run: give one");
    }
    budget::require_positive_at_most(a.days, "--days", budget::kMaxDays);
    const double flops = budget::flops_for_time(a.gpus, a.days, tau.tflops);
    out["flops"] = flops;
    out["days"] = a.days;
    out["gpu_hours"] = a.gpus * a.days * 24.0;
    if (model) out["tokens"] = flops / model->flops;
    std::optional<double> peak_flops;
    if (tau.peak_tflops) {
      peak_flops = budget::flops_for_time(a.gpus, a.days, *tau.peak_tflops);
      out["peak_tflops_per_gpu"] = *tau.peak_tflops;
      out["peak_flops"] = *peak_flops;
    }
    if (a.json) {
      fmt::print("{}\n", out.dump(2));
      return;
    }
    fmt::print("{} GPUs x {} days at {:.1f} TFLOP/s per GPU ({}):\n", a.gpus, a.days, tau.tflops, tau.source);
    fmt::print("  {:.4g} FLOPs ({:.4g} TFLOPs), {:.0f} GPU-hours\n", flops, flops / budget::kTera,
               a.gpus * a.days * 24.0);
    if (model) fmt::print("  enough for {:.4g} tokens ({})\n", flops / model->flops, model->what);
    if (peak_flops) {
      fmt::print(
          "  the naive estimate at the datasheet peak ({:.1f} TFLOP/s, {}): {:.4g} FLOPs, {:.2f}x what the "
          "measured tau delivers\n",
          *tau.peak_tflops, tau.peak_what, *peak_flops, *peak_flops / flops);
    }
    return;
  }

  // Time: the run's FLOPs on K GPUs at tau.
  if (!model) throw UserError("give the model: --params N (C = 6ND) or its shape (--hidden --layers --vocab --seq)");
  if (!a.line.gave("--tokens")) throw UserError("give the training tokens: --tokens D (or --days X for a time budget)");
  budget::require_positive_at_most(a.tokens, "--tokens", budget::kMaxTokens);
  const budget::TimeEstimate t = budget::time_for_flops(model->flops * a.tokens, tau.tflops, a.gpus);
  out["flops"] = t.flops;
  out["days"] = t.days;
  out["gpu_hours"] = t.gpu_hours;
  out["seconds"] = t.seconds;
  out["tokens"] = a.tokens;
  out["flops_per_token"] = model->flops;
  // The datasheet-peak estimate beside the measured one: the gap a plan built on the datasheet
  // misses (the reference article: HyperCLOVA at 2.67 days at peak, 13.4 days reported).
  std::optional<budget::TimeEstimate> at_peak;
  if (tau.peak_tflops) {
    at_peak = budget::time_for_flops(t.flops, *tau.peak_tflops, a.gpus);
    out["peak_tflops_per_gpu"] = *tau.peak_tflops;
    out["peak_days"] = at_peak->days;
    out["peak_gpu_hours"] = at_peak->gpu_hours;
  }
  if (a.json) {
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("{:.4g} tokens x {:.4g} FLOPs per token ({}) = {:.4g} FLOPs\n", a.tokens, model->flops, model->what,
             t.flops);
  fmt::print("on {} GPUs at {:.1f} TFLOP/s per GPU ({}):\n", a.gpus, tau.tflops, tau.source);
  fmt::print("  {:.3f} days ({:.1f} hours), {:.0f} GPU-hours\n", t.days, t.seconds / budget::kSecondsPerHour,
             t.gpu_hours);
  if (at_peak) {
    fmt::print("the naive estimate at the datasheet peak ({:.1f} TFLOP/s, {}):\n", *tau.peak_tflops, tau.peak_what);
    fmt::print("  {:.3f} days, {:.0f} GPU-hours: the measured tau takes {:.2f}x as long\n", at_peak->days,
               at_peak->gpu_hours, t.days / at_peak->days);
  }
}

}  // namespace

void add_budget_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<BudgetArgs>();
  auto* cmd = app.add_subcommand(
      "budget",
      "training time of a run (--params/--tokens/--gpus) or FLOPs of a GPU budget (--gpus/--days), at --tflops or a "
      "measured tau (--results FILE [--benchmark NAME]; a file's only model step by default), beside the "
      "datasheet peak's");
  a->line.cmd = cmd;
  cmd->add_option("--params", a->params, "non-embedding parameters N (C = 6ND)");
  cmd->add_option("--tokens", a->tokens, "training tokens D");
  cmd->add_option("--gpus", a->gpus, "number of GPUs K")->required();
  cmd->add_option("--tflops", a->tflops, "achieved TFLOP/s per GPU (tau)");
  cmd->add_option("--results", a->results, "result file to take tau from");
  cmd->add_option("--benchmark", a->benchmark,
                  "benchmark of --results whose tau to use (default: the file's model step, when "
                  "it has exactly one)");
  cmd->add_option("--days", a->days, "time budget in days: print the FLOPs it buys");
  a->model.add_to(cmd);
  cmd->add_flag("--json", a->json, "print JSON (flops, days, gpu_hours, ...)");
  cmd->callback([a, &exit_code] {
    run_budget(*a);
    exit_code = 0;
  });
}

}  // namespace wflops::cli
