// wflops plan: compute-optimal dense and fine-grained MoE models for a budget, in FLOPs and, with
// a result file holding the MoE step's measured tau(G), in GPU time. The planning is
// planner::plan_budget's; this file reads the flags and the file, checks them, and prints the plan.
#include <fmt/core.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "errors.hpp"
#include "model/budget.hpp"
#include "model/planner.hpp"
#include "results/result_reader.hpp"

namespace wflops::cli {

namespace {

struct PlanArgs {
  double flops = 0, gpus = 0, days = 0, tflops = 0, experts = 64;
  std::string results, benchmark, route = planner::kDefaultRouting;
  bool json = false;
  CommandLine line;
};

nlohmann::json shape_json(const planner::MoeShape& s, bool whole) {
  nlohmann::json j = {{"d_model", s.d_model},
                      {"active_params", s.active_params},
                      {"total_params", s.total_params},
                      {"tokens", s.tokens},
                      {"loss", s.loss},
                      {"flops", s.flops}};
  if (whole) {
    j["n_blocks"] = static_cast<long long>(s.n_blocks);
  } else {
    j["n_blocks"] = s.n_blocks;
  }
  if (s.gpu_hours > 0) j["gpu_hours"] = s.gpu_hours;
  if (!s.tau_benchmark.empty()) {
    j["tau"] = {{"benchmark", s.tau_benchmark}, {"tflops", s.tau_tflops}, {"d_model", s.tau_d_model}};
  }
  return j;
}

nlohmann::json moe_json(const planner::MoePlan& p) {
  return {{"granularity", p.granularity},
          {"continuous", shape_json(p.continuous, false)},
          {"buildable", shape_json(p.buildable, true)},
          {"at_search_bound", p.at_search_bound}};
}

nlohmann::json dense_json(const planner::DensePlan& p) {
  return {{"params", p.params}, {"tokens", p.tokens}, {"loss", p.loss}, {"flops", p.flops}};
}

nlohmann::json tau_row_json(const planner::MoeTau& r) {
  return {{"benchmark", r.benchmark}, {"d_model", r.d_model}, {"tokens", r.tokens}, {"tflops", r.tflops}};
}

// "+3.2e-06": how far the buildable model's loss sits above the continuous optimum's.
std::string loss_excess(const planner::MoePlan& p) {
  return fmt::format("{:+.2g}", p.buildable.loss - p.continuous.loss);
}

// The benchmark names that priced the time search's models at one G, each with the models it priced.
std::vector<std::pair<std::string, std::string>> rows_used(const planner::TimeRow& r) {
  std::vector<std::pair<std::string, std::string>> used;
  const std::pair<const planner::MoeShape*, const char*> shapes[] = {
      {&r.flop_optimal.continuous, "FLOP-optimal"},
      {&r.flop_optimal.buildable, "FLOP-optimal buildable"},
      {&r.time_optimal.continuous, "time-optimal"},
      {&r.time_optimal.buildable, "time-optimal buildable"}};
  for (const auto& [s, what] : shapes) {
    auto it = std::find_if(used.begin(), used.end(), [&](const auto& u) { return u.first == s->tau_benchmark; });
    if (it == used.end()) {
      used.emplace_back(s->tau_benchmark, what);
    } else {
      it->second += std::string(", ") + what;
    }
  }
  if (used.size() == 1) used.front().second = "all four models";
  return used;
}

// The budget in FLOPs, and how the text names it.
struct Budget {
  double flops = 0;
  std::string text;
};

// Every flag checked before any file is read: each must be in range and used by the mode given.
void check_flags(const PlanArgs& a) {
  budget::require_count(a.experts, "--experts", budget::kMaxExperts);
  if (a.route != "expert_choice" && a.route != "token_choice") {
    throw UserError(fmt::format("--route '{}': expected expert_choice or token_choice", a.route));
  }
  if (a.line.gave("--benchmark") && !a.line.gave("--results")) {
    throw UserError("--benchmark names a benchmark of --results FILE: give the file");
  }
  if (a.line.gave("--route") && !a.line.gave("--results")) {
    throw UserError("--route picks the moe_step rows of --results FILE that price the search in time: give the file");
  }
  if (a.line.gave("--flops")) {
    if (a.line.gave("--days")) throw UserError("give the budget as --flops F or as --gpus K --days X, not both");
    if (a.line.gave("--gpus")) throw UserError("--gpus goes with --days X; with --flops F the budget is already given");
    if (a.line.gave("--tflops")) {
      throw UserError(
          "--tflops converts --gpus/--days into FLOPs; with --flops F it would be unused (the search "
          "in time takes its tau from --results FILE)");
    }
    budget::require_positive_at_most(a.flops, "--flops", budget::kMaxFlops);
    return;
  }
  if (!a.line.gave("--gpus") || !a.line.gave("--days")) {
    throw UserError("give the budget: --flops F, or --gpus K --days X with --tflops T or --results FILE");
  }
  budget::require_count(a.gpus, "--gpus", budget::kMaxGpus);
  budget::require_positive_at_most(a.days, "--days", budget::kMaxDays);
  if (a.line.gave("--tflops")) {
    budget::require_positive_at_most(a.tflops, "--tflops", budget::kMaxTflopsPerGpu);
  } else if (!a.line.gave("--results")) {
    throw UserError("--gpus/--days need the TFLOP/s per GPU: --tflops T or --results FILE");
  }
}

Budget budget_of(const PlanArgs& a, const std::optional<planner::MeasuredTau>& measured) {
  if (a.line.gave("--flops")) return {a.flops, "--flops"};
  if (a.line.gave("--tflops")) {
    return {budget::flops_for_time(a.gpus, a.days, a.tflops),
            fmt::format("{} GPUs x {} days at {} TFLOP/s", a.gpus, a.days, a.tflops)};
  }
  const double tau = measured->dense_tflops;
  return {budget::flops_for_time(a.gpus, a.days, tau),
          fmt::format("{} GPUs x {} days at {:.1f} TFLOP/s, {} in {}", a.gpus, a.days, tau, measured->dense_benchmark,
                      a.results)};
}

// A best MoE on the n_blocks search limit is no optimum: refused, with the budgets that plan.
void check_plannable(const PlanArgs& a, const Budget& b, const planner::Plan& p) {
  if (!p.moe.at_search_bound) return;
  const bool small = p.moe.continuous.n_blocks < 2;
  const planner::FlopRange range = planner::plannable_flops(a.experts);
  const std::string given = a.line.gave("--flops") ? fmt::format("--flops {:g}", a.flops)
                                                   : fmt::format("the budget of --gpus/--days, {:.2g} FLOPs,", b.flops);
  const std::string why = small ? fmt::format(
                                      "too small: even one block of d_model {:g} (E = {:g}) is larger than "
                                      "compute-optimal",
                                      planner::kDModelPerBlock, a.experts)
                                : fmt::format("too large: the model would need over {:g} blocks", planner::kMaxBlocks);
  throw UserError(fmt::format("{} is {}; budgets from {:.2g} to {:.2g} FLOPs plan at E = {:g}", given, why, range.lo,
                              range.hi, a.experts));
}

void print_json(const planner::Plan& p) {
  nlohmann::json out;
  out["budget_flops"] = p.flops;
  out["experts"] = p.experts;
  out["dense"] = dense_json(p.dense);
  out["moe"] = moe_json(p.moe);
  out["moe_by_granularity"] = nlohmann::json::array();
  for (const auto& m : p.moe_by_granularity) out["moe_by_granularity"].push_back(moe_json(m));
  out["dense_compute_multiplier"] = p.dense_compute_multiplier;
  out["dense_compute_multiplier_buildable"] = p.dense_compute_multiplier_buildable;
  if (p.time) {
    nlohmann::json t;
    t["gpu_hours"] = p.time->gpu_seconds / budget::kSecondsPerHour;
    t["dense_tflops"] = p.time->tau.dense_tflops;
    t["dense_benchmark"] = p.time->tau.dense_benchmark;
    t["routing"] = p.time->tau.routing;
    t["dense"] = dense_json(p.time->dense);
    t["granularities"] = nlohmann::json::array();
    std::vector<std::string> used;
    for (const auto& r : p.time->rows) {
      nlohmann::json measured_rows = nlohmann::json::array();
      for (const auto& m : r.rows) measured_rows.push_back(tau_row_json(m));
      t["granularities"].push_back({{"granularity", r.granularity},
                                    {"measured", measured_rows},
                                    {"flop_optimal", moe_json(r.flop_optimal)},
                                    {"time_optimal", moe_json(r.time_optimal)}});
      for (const auto& [name, what] : rows_used(r)) {
        if (std::find(used.begin(), used.end(), name) == used.end()) used.push_back(name);
      }
    }
    t["benchmarks_used"] = used;
    t["flop_optimal_granularity"] = p.time->rows[p.time->flop_best].granularity;
    t["time_optimal_granularity"] = p.time->rows[p.time->time_best].granularity;
    t["time_optimal"] = moe_json(p.time->rows[p.time->time_best].time_optimal);
    out["time"] = t;
  } else {
    out["time"] = nullptr;
  }
  out["notes"] = p.notes;
  fmt::print("{}\n", out.dump(2));
}

void print_text(const PlanArgs& a, const std::string& budget_text, const std::string& file_label,
                const planner::Plan& p) {
  fmt::print("Budget: {:.4g} FLOPs ({})\n\n", p.flops, budget_text);
  fmt::print("Dense, compute-optimal (L = 0.47 + 16.3/N^0.126 + 26.7/D^0.127, 6ND = F):\n");
  fmt::print("  params {}, tokens {}, loss {:.4f}\n\n", short_count(p.dense.params), short_count(p.dense.tokens),
             p.dense.loss);
  fmt::print("Fine-grained MoE, E = {}, compute-optimal per granularity G (d_model = 64 n_blocks):\n", a.experts);
  fmt::print("  continuous: the scaling law's optimum over real n_blocks; buildable: the best whole n_blocks\n");
  fmt::print("  {:>4} | {:>8} {:>8} {:>8} {:>8} {:>7} | {:>8} {:>7} {:>8} {:>8} {:>8} {:>7}\n", "G", "n_blocks",
             "d_model", "total", "tokens", "loss", "n_blocks", "d_model", "active", "total", "tokens", "loss");
  for (const auto& m : p.moe_by_granularity) {
    const auto& c = m.continuous;
    const auto& b = m.buildable;
    fmt::print("  {:>4} | {:>8.2f} {:>8.1f} {:>8} {:>8} {:>7.4f} | {:>8} {:>7} {:>8} {:>8} {:>8} {:>7.4f}{}\n",
               m.granularity, c.n_blocks, c.d_model, short_count(c.total_params), short_count(c.tokens), c.loss,
               b.n_blocks, b.d_model, short_count(b.active_params), short_count(b.total_params), short_count(b.tokens),
               b.loss, m.granularity == p.moe.granularity ? "  <- best" : "");
  }
  const auto& c = p.moe.continuous;
  const auto& b = p.moe.buildable;
  fmt::print("\nFLOP-optimal MoE: G = {}\n", p.moe.granularity);
  fmt::print(
      "  continuous optimum: n_blocks {:.2f}, d_model {:.1f}, {} active / {} total params, {} tokens, "
      "loss {:.4f}\n",
      c.n_blocks, c.d_model, short_count(c.active_params), short_count(c.total_params), short_count(c.tokens), c.loss);
  fmt::print(
      "  buildable:          n_blocks {}, d_model {}, {} active / {} total params, {} tokens, loss {:.4f} "
      "({} above the continuous optimum)\n",
      b.n_blocks, b.d_model, short_count(b.active_params), short_count(b.total_params), short_count(b.tokens), b.loss,
      loss_excess(p.moe));
  fmt::print(
      "A dense model needs {:.3g}x this compute to reach the continuous optimum's loss ({:.3g}x for the "
      "buildable model's).\n",
      p.dense_compute_multiplier, p.dense_compute_multiplier_buildable);

  if (p.time) {
    fmt::print("\nIn GPU time, with tau measured in {} ({}), E = {}, route:{}:\n", a.results, file_label, a.experts,
               p.time->tau.routing);
    fmt::print("  budget {:.4g} GPU-hours; dense tau {:.1f} TFLOP/s ({})\n",
               p.time->gpu_seconds / budget::kSecondsPerHour, p.time->tau.dense_tflops, p.time->tau.dense_benchmark);
    fmt::print("  {:>4} | {:>14} {:>7} | {:>8} {:>9} {:>8} {:>7} {:>7} | {:>8} {:>6}\n", "G", "FLOP-opt GPU-h", "loss",
               "n_blocks", "buildable", "tokens", "loss", "b.loss", "tau_moe", "at d");
    for (std::size_t i = 0; i < p.time->rows.size(); ++i) {
      const auto& r = p.time->rows[i];
      const auto& tc = r.time_optimal.continuous;
      fmt::print("  {:>4} | {:>14.4g} {:>7.4f} | {:>8.2f} {:>9} {:>8} {:>7.4f} {:>7.4f} | {:>8.1f} {:>6}{}\n",
                 r.granularity, r.flop_optimal.continuous.gpu_hours, r.flop_optimal.continuous.loss, tc.n_blocks,
                 r.time_optimal.buildable.n_blocks, short_count(r.time_optimal.buildable.tokens), tc.loss,
                 r.time_optimal.buildable.loss, tc.tau_tflops, tc.tau_d_model,
                 i == p.time->time_best ? "  <- best in time" : "");
    }
    fmt::print(
        "  (left: the FLOP-optimal model at each G and the GPU-hours it takes; middle: the best model at\n"
        "   each G that fits the GPU-hours, continuous and buildable; right: the expert-weight TFLOP/s\n"
        "   that priced it, from the moe_step row at the measured d nearest its d_model)\n");
    fmt::print("  moe_step rows used (E = {}, route:{}, nearest d, largest tok, fastest implementation):\n", a.experts,
               p.time->tau.routing);
    for (const auto& r : p.time->rows) {
      for (const auto& [name, what] : rows_used(r)) fmt::print("    G = {}: {} ({})\n", r.granularity, name, what);
    }
    fmt::print(
        "Among the measured G: FLOP-optimal G = {}, time-optimal G = {} (loss {:.4f}, buildable {:.4f}; "
        "dense in the same time: {:.4f}).\n",
        p.time->rows[p.time->flop_best].granularity, p.time->rows[p.time->time_best].granularity,
        p.time->rows[p.time->time_best].time_optimal.continuous.loss,
        p.time->rows[p.time->time_best].time_optimal.buildable.loss, p.time->dense.loss);
  }
  for (const auto& n : p.notes) fmt::print("note: {}\n", n);
}

void run_plan(const PlanArgs& a) {
  check_flags(a);
  std::optional<ResultFile> file;
  std::optional<planner::MeasuredTau> measured;
  if (a.line.gave("--results")) {
    file = read_result_file(a.results);
    measured = planner::measured_tau(*file, a.experts, a.benchmark, a.route);
  }
  const Budget b = budget_of(a, measured);
  // The GPU time of the search in time when --gpus/--days give it; else the library takes what
  // the FLOPs last at the dense tau.
  std::optional<double> gpu_seconds;
  if (a.line.gave("--days")) gpu_seconds = a.gpus * a.days * budget::kSecondsPerDay;
  const planner::Plan p = planner::plan_budget(b.flops, a.experts, measured, gpu_seconds);
  check_plannable(a, b, p);
  if (a.json) {
    print_json(p);
  } else {
    print_text(a, b.text, file ? file->label() : std::string(), p);
  }
}

}  // namespace

void add_plan_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<PlanArgs>();
  auto* cmd = app.add_subcommand(
      "plan", "compute-optimal dense and fine-grained MoE models for a budget, in FLOPs and in measured GPU time");
  a->line.cmd = cmd;
  cmd->add_option("--flops", a->flops, "compute budget in FLOPs");
  cmd->add_option("--gpus", a->gpus, "number of GPUs (with --days)");
  cmd->add_option("--days", a->days, "days of training (with --gpus)");
  cmd->add_option("--tflops", a->tflops, "TFLOP/s per GPU for --gpus/--days");
  cmd->add_option("--results", a->results, "result file with mlp_step (dense tau) and moe_step (tau per G) benchmarks");
  cmd->add_option("--benchmark", a->benchmark, "benchmark of --results for the dense tau (default: fastest mlp_step)");
  cmd->add_option("--experts", a->experts, "MoE expansion rate E")->capture_default_str();
  cmd->add_option("--route", a->route,
                  "routing of the planned MoE, expert_choice or token_choice: the moe_step rows "
                  "of --results with this route:... price its experts")
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "print JSON (dense, moe, dense_compute_multiplier, time)");
  cmd->callback([a, &exit_code] {
    run_plan(*a);
    exit_code = 0;
  });
}

}  // namespace wflops::cli
