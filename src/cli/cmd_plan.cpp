// wflops plan: compute-optimal dense and fine-grained MoE models for a budget, in FLOPs and, with
// a result file holding the MoE step's measured tau(G), in GPU time.
#include <fmt/core.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "budget.hpp"
#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "errors.hpp"
#include "planner.hpp"
#include "result_reader.hpp"

namespace wflops::cli {

namespace {

struct PlanArgs {
  double flops = 0, gpus = 0, days = 0, tflops = 0, experts = 64;
  std::string results, benchmark;
  bool json = false;
  CLI::Option* flops_opt = nullptr;
  CLI::Option* gpus_opt = nullptr;
  CLI::Option* days_opt = nullptr;
  CLI::Option* tflops_opt = nullptr;
  CLI::Option* results_opt = nullptr;
  CLI::Option* benchmark_opt = nullptr;
};

struct TimeRow {
  planner::MoeTau tau;
  planner::MoePlan flop_optimal;  // the FLOP search's candidate at this G, with its GPU-hours
  planner::MoePlan time_optimal;  // the best model at this G within the GPU-hours
};

struct TimeSearch {
  double gpu_seconds = 0;
  planner::MeasuredTau tau;
  std::vector<TimeRow> rows;
  planner::DensePlan dense;  // dense model trained for the same GPU time at the dense tau
  std::size_t flop_best = 0, time_best = 0;  // indices into rows
};

nlohmann::json moe_json(const planner::MoePlan& p) {
  nlohmann::json j = {{"n_blocks", p.n_blocks},         {"d_model", p.d_model}, {"active_params", p.active_params},
                      {"total_params", p.total_params}, {"tokens", p.tokens},   {"granularity", p.granularity},
                      {"loss", p.loss},                 {"flops", p.flops}};
  if (p.gpu_hours > 0) j["gpu_hours"] = p.gpu_hours;
  return j;
}

nlohmann::json dense_json(const planner::DensePlan& p) {
  return {{"params", p.params}, {"tokens", p.tokens}, {"loss", p.loss}, {"flops", p.flops}};
}

void run_plan(const PlanArgs& a) {
  budget::require_positive(a.experts, "--experts");
  std::optional<ResultFile> file;
  if (a.results_opt->count()) file = read_result_file(a.results);
  if (a.benchmark_opt->count() && !file) throw UserError("--benchmark names a benchmark of --results FILE: give the file");

  // The FLOP budget.
  double flops = 0;
  std::string budget_text;
  std::optional<planner::MeasuredTau> measured;
  auto need_measured = [&]() -> const planner::MeasuredTau& {
    if (!measured) measured = planner::measured_tau(*file, a.experts, a.benchmark);
    return *measured;
  };
  if (a.flops_opt->count()) {
    if (a.days_opt->count()) throw UserError("give the budget as --flops F or as --gpus K --days X, not both");
    budget::require_positive(a.flops, "--flops");
    flops = a.flops;
    budget_text = "--flops";
  } else {
    if (!a.gpus_opt->count() || !a.days_opt->count()) {
      throw UserError("give the budget: --flops F, or --gpus K --days X with --tflops T or --results FILE");
    }
    double tau = 0;
    if (a.tflops_opt->count()) {
      budget::require_positive(a.tflops, "--tflops");
      tau = a.tflops;
      budget_text = fmt::format("{} GPUs x {} days at {} TFLOP/s", a.gpus, a.days, tau);
    } else if (file) {
      tau = need_measured().dense_tflops;
      budget_text = fmt::format("{} GPUs x {} days at {:.1f} TFLOP/s, {} in {}", a.gpus, a.days, tau,
                                measured->dense_benchmark, a.results);
    } else {
      throw UserError("--gpus/--days need the TFLOP/s per GPU: --tflops T or --results FILE");
    }
    flops = budget::flops_for_time(a.gpus, a.days, tau);
  }

  // FLOP-optimal models.
  const planner::DensePlan dense = planner::plan_dense(flops);
  std::vector<planner::MoePlan> moe_by_g;
  for (double g : planner::granularities()) moe_by_g.push_back(planner::plan_moe(flops, a.experts, g));
  const planner::MoePlan moe = planner::best_of(moe_by_g);
  const double multiplier = planner::dense_compute_multiplier(flops, moe.loss);

  // The same search in GPU time, with the measured tau(G).
  std::optional<TimeSearch> time;
  std::vector<std::string> notes;
  if (file) {
    const planner::MeasuredTau& m = need_measured();
    notes = m.notes;
    if (m.moe.empty()) {
      notes.push_back(fmt::format("'{}' has no moe_step benchmarks: no search in time", a.results));
    } else {
      TimeSearch t;
      t.tau = m;
      // The GPU time of the budget: given directly, or what the FLOPs take at the dense tau.
      t.gpu_seconds = a.days_opt->count() ? a.gpus * a.days * budget::kSecondsPerDay
                                          : flops / (m.dense_tflops * budget::kTera);
      t.dense = planner::plan_dense(t.gpu_seconds * m.dense_tflops * budget::kTera);
      for (const auto& tau : m.moe) {
        TimeRow row;
        row.tau = tau;
        row.flop_optimal = planner::plan_moe(flops, a.experts, tau.granularity);
        row.flop_optimal.gpu_hours = row.flop_optimal.tokens *
                                     planner::moe_gpu_seconds_per_token(row.flop_optimal.n_blocks, m.dense_tflops,
                                                                        tau.tflops) /
                                     budget::kSecondsPerHour;
        row.time_optimal =
            planner::plan_moe_in_time(t.gpu_seconds, a.experts, tau.granularity, m.dense_tflops, tau.tflops);
        t.rows.push_back(row);
      }
      for (std::size_t i = 1; i < t.rows.size(); ++i) {
        if (t.rows[i].flop_optimal.loss < t.rows[t.flop_best].flop_optimal.loss) t.flop_best = i;
        if (t.rows[i].time_optimal.loss < t.rows[t.time_best].time_optimal.loss) t.time_best = i;
      }
      time = t;
    }
  }
  for (const auto& p : moe_by_g) {
    if (p.at_search_bound) notes.push_back(fmt::format("G = {}: the optimum sits on the n_blocks search limit", p.granularity));
  }

  if (a.json) {
    nlohmann::json out;
    out["budget_flops"] = flops;
    out["experts"] = a.experts;
    out["dense"] = dense_json(dense);
    out["moe"] = moe_json(moe);
    out["moe_by_granularity"] = nlohmann::json::array();
    for (const auto& p : moe_by_g) out["moe_by_granularity"].push_back(moe_json(p));
    out["dense_compute_multiplier"] = multiplier;
    if (time) {
      nlohmann::json t;
      t["gpu_hours"] = time->gpu_seconds / budget::kSecondsPerHour;
      t["dense_tflops"] = time->tau.dense_tflops;
      t["dense_benchmark"] = time->tau.dense_benchmark;
      t["dense"] = dense_json(time->dense);
      t["granularities"] = nlohmann::json::array();
      for (const auto& r : time->rows) {
        t["granularities"].push_back({{"granularity", r.tau.granularity},
                                      {"tflops", r.tau.tflops},
                                      {"benchmark", r.tau.benchmark},
                                      {"flop_optimal", moe_json(r.flop_optimal)},
                                      {"time_optimal", moe_json(r.time_optimal)}});
      }
      t["flop_optimal_granularity"] = time->rows[time->flop_best].tau.granularity;
      t["time_optimal_granularity"] = time->rows[time->time_best].tau.granularity;
      t["time_optimal"] = moe_json(time->rows[time->time_best].time_optimal);
      out["time"] = t;
    } else {
      out["time"] = nullptr;
    }
    out["notes"] = notes;
    fmt::print("{}\n", out.dump(2));
    return;
  }

  fmt::print("Budget: {:.4g} FLOPs ({})\n\n", flops, budget_text);
  fmt::print("Dense, compute-optimal (L = 0.47 + 16.3/N^0.126 + 26.7/D^0.127, 6ND = F):\n");
  fmt::print("  params {}, tokens {}, loss {:.4f}\n\n", short_count(dense.params), short_count(dense.tokens), dense.loss);
  fmt::print("Fine-grained MoE, E = {}, compute-optimal per granularity G (d_model = 64 n_blocks):\n", a.experts);
  fmt::print("  {:>4} {:>8} {:>8} {:>10} {:>10} {:>10} {:>8}\n", "G", "n_blocks", "d_model", "active", "total", "tokens",
             "loss");
  for (const auto& p : moe_by_g) {
    fmt::print("  {:>4} {:>8} {:>8} {:>10} {:>10} {:>10} {:>8.4f}{}\n", p.granularity, p.n_blocks, p.d_model,
               short_count(p.active_params), short_count(p.total_params), short_count(p.tokens), p.loss,
               p.granularity == moe.granularity ? "  <- best" : "");
  }
  fmt::print("\nFLOP-optimal MoE: G = {}, n_blocks {}, d_model {}, {} active / {} total params, {} tokens, loss {:.4f}\n",
             moe.granularity, moe.n_blocks, moe.d_model, short_count(moe.active_params), short_count(moe.total_params),
             short_count(moe.tokens), moe.loss);
  fmt::print("A dense model needs {:.3g}x this compute to reach the MoE loss.\n", multiplier);

  if (time) {
    fmt::print("\nIn GPU time, with tau measured in {} ({}):\n", a.results, file->label());
    fmt::print("  budget {:.4g} GPU-hours; dense tau {:.1f} TFLOP/s ({})\n", time->gpu_seconds / budget::kSecondsPerHour,
               time->tau.dense_tflops, time->tau.dense_benchmark);
    fmt::print("  {:>4} {:>9} | {:>14} {:>8} | {:>8} {:>10} {:>8}\n", "G", "tau_moe", "FLOP-opt GPU-h", "loss",
               "n_blocks", "tokens", "loss");
    for (std::size_t i = 0; i < time->rows.size(); ++i) {
      const auto& r = time->rows[i];
      fmt::print("  {:>4} {:>9.1f} | {:>14.4g} {:>8.4f} | {:>8} {:>10} {:>8.4f}{}\n", r.tau.granularity, r.tau.tflops,
                 r.flop_optimal.gpu_hours, r.flop_optimal.loss, r.time_optimal.n_blocks,
                 short_count(r.time_optimal.tokens), r.time_optimal.loss, i == time->time_best ? "  <- best in time" : "");
    }
    fmt::print("  (left: the FLOP-optimal model at each G and the GPU-hours it takes; right: the best model at each G\n"
               "   that fits the GPU-hours; tau_moe is the expert-weight TFLOP/s of the fastest moe_step at that G)\n");
    fmt::print("Among the measured G: FLOP-optimal G = {}, time-optimal G = {} (loss {:.4f}; dense in the same time: {:.4f}).\n",
               time->rows[time->flop_best].tau.granularity, time->rows[time->time_best].tau.granularity,
               time->rows[time->time_best].time_optimal.loss, time->dense.loss);
  }
  for (const auto& n : notes) fmt::print("note: {}\n", n);
}

}  // namespace

void add_plan_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<PlanArgs>();
  auto* cmd = app.add_subcommand(
      "plan", "compute-optimal dense and fine-grained MoE models for a budget, in FLOPs and in measured GPU time");
  a->flops_opt = cmd->add_option("--flops", a->flops, "compute budget in FLOPs");
  a->gpus_opt = cmd->add_option("--gpus", a->gpus, "number of GPUs (with --days)");
  a->days_opt = cmd->add_option("--days", a->days, "days of training (with --gpus)");
  a->tflops_opt = cmd->add_option("--tflops", a->tflops, "TFLOP/s per GPU for --gpus/--days");
  a->results_opt = cmd->add_option(
      "--results", a->results, "result file with mlp_step (dense tau) and moe_step (tau per G) benchmarks");
  a->benchmark_opt = cmd->add_option("--benchmark", a->benchmark, "benchmark of --results for the dense tau (default: fastest mlp_step)");
  cmd->add_option("--experts", a->experts, "MoE expansion rate E")->capture_default_str();
  cmd->add_flag("--json", a->json, "print JSON (dense, moe, dense_compute_multiplier, time)");
  cmd->callback([a, &exit_code] {
    run_plan(*a);
    exit_code = 0;
  });
}

}  // namespace wflops::cli
