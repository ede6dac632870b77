// wflops plan: compute-optimal dense and fine-grained MoE models for a budget, in FLOPs and, with
// a result file holding the MoE step's measured tau(G), in GPU time.
#include <fmt/core.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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
  std::string results, benchmark, route = planner::kDefaultRouting;
  bool json = false;
  CLI::Option* flops_opt = nullptr;
  CLI::Option* gpus_opt = nullptr;
  CLI::Option* days_opt = nullptr;
  CLI::Option* tflops_opt = nullptr;
  CLI::Option* results_opt = nullptr;
  CLI::Option* benchmark_opt = nullptr;
};

// A planned d_model more than this factor from the d of the row that priced it gets a note.
constexpr double kFarRatio = 2.0;

struct TimeRow {
  double granularity = 0;
  std::vector<planner::MoeTau> rows;  // the measured rows at this G, one per d
  planner::MoePlan flop_optimal;      // the FLOP search's models at this G, priced in GPU-hours
  planner::MoePlan time_optimal;      // the best models at this G within the GPU-hours
};

struct TimeSearch {
  double gpu_seconds = 0;
  planner::MeasuredTau tau;
  std::vector<TimeRow> rows;
  planner::DensePlan dense;  // dense model trained for the same GPU time at the dense tau
  std::size_t flop_best = 0, time_best = 0;  // indices into rows, by continuous loss
};

nlohmann::json shape_json(const planner::MoeShape& s, bool whole) {
  nlohmann::json j = {{"d_model", s.d_model}, {"active_params", s.active_params}, {"total_params", s.total_params},
                      {"tokens", s.tokens},   {"loss", s.loss},                   {"flops", s.flops}};
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
std::vector<std::pair<std::string, std::string>> rows_used(const TimeRow& r) {
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

void run_plan(const PlanArgs& a) {
  budget::require_positive(a.experts, "--experts");
  if (a.route != "expert_choice" && a.route != "token_choice") {
    throw UserError(fmt::format("--route '{}': expected expert_choice or token_choice", a.route));
  }
  std::optional<ResultFile> file;
  if (a.results_opt->count()) file = read_result_file(a.results);
  if (a.benchmark_opt->count() && !file) {
    throw UserError("--benchmark names a benchmark of --results FILE: give the file");
  }

  // The FLOP budget.
  double flops = 0;
  std::string budget_text;
  std::optional<planner::MeasuredTau> measured;
  auto need_measured = [&]() -> const planner::MeasuredTau& {
    if (!measured) measured = planner::measured_tau(*file, a.experts, a.benchmark, a.route);
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

  // FLOP-optimal models; the best G is the one with the lowest continuous loss (the scaling law's
  // optimum), its buildable model reported beside it.
  const planner::DensePlan dense = planner::plan_dense(flops);
  std::vector<planner::MoePlan> moe_by_g;
  for (double g : planner::granularities()) moe_by_g.push_back(planner::plan_moe(flops, a.experts, g));
  const planner::MoePlan moe = planner::best_of(moe_by_g);
  const double multiplier = planner::dense_compute_multiplier(flops, moe.continuous.loss);
  const double multiplier_buildable = planner::dense_compute_multiplier(flops, moe.buildable.loss);

  // The same search in GPU time, with the measured tau(G) of the rows nearest each model's d.
  std::optional<TimeSearch> time;
  std::vector<std::string> notes;
  if (file) {
    const planner::MeasuredTau& m = need_measured();
    notes = m.notes;
    if (m.moe.empty()) {
      notes.push_back("no search in time");
    } else {
      TimeSearch t;
      t.tau = m;
      // The GPU time of the budget: given directly, or what the FLOPs take at the dense tau.
      t.gpu_seconds = a.days_opt->count() ? a.gpus * a.days * budget::kSecondsPerDay
                                          : flops / (m.dense_tflops * budget::kTera);
      t.dense = planner::plan_dense(t.gpu_seconds * m.dense_tflops * budget::kTera);
      for (double g : m.measured_granularities()) {
        TimeRow row;
        row.granularity = g;
        row.rows = m.at_granularity(g);
        row.flop_optimal = planner::plan_moe(flops, a.experts, g);
        planner::price_in_time(row.flop_optimal.continuous, m.dense_tflops, row.rows);
        planner::price_in_time(row.flop_optimal.buildable, m.dense_tflops, row.rows);
        row.time_optimal = planner::plan_moe_in_time(t.gpu_seconds, a.experts, g, m.dense_tflops, row.rows);
        t.rows.push_back(row);
      }
      // tau read from a layer of quite another width is an extrapolation: say so, with the worst case.
      std::string far_g;
      double far_d = 0, far_tau_d = 0, far_ratio = 0;
      for (const auto& r : t.rows) {
        bool far = false;
        for (const planner::MoeShape* s : {&r.flop_optimal.continuous, &r.flop_optimal.buildable,
                                           &r.time_optimal.continuous, &r.time_optimal.buildable}) {
          const double ratio = std::max(s->d_model / s->tau_d_model, s->tau_d_model / s->d_model);
          if (ratio > kFarRatio) far = true;
          if (ratio > far_ratio) {
            far_ratio = ratio;
            far_d = s->d_model;
            far_tau_d = s->tau_d_model;
          }
        }
        if (far) far_g += fmt::format("{}{}", far_g.empty() ? "" : ", ", r.granularity);
      }
      if (!far_g.empty()) {
        notes.push_back(fmt::format("G = {}: a planned model's d_model is over {}x from the nearest measured d "
                                    "(worst: {:.0f} priced at d = {}); measure moe_step nearer that d for its tau",
                                    far_g, kFarRatio, far_d, far_tau_d));
      }
      for (std::size_t i = 1; i < t.rows.size(); ++i) {
        if (t.rows[i].flop_optimal.continuous.loss < t.rows[t.flop_best].flop_optimal.continuous.loss) t.flop_best = i;
        if (t.rows[i].time_optimal.continuous.loss < t.rows[t.time_best].time_optimal.continuous.loss) t.time_best = i;
      }
      time = t;
    }
  }
  for (const auto& p : moe_by_g) {
    if (p.at_search_bound) {
      notes.push_back(fmt::format("G = {}: the optimum sits on the n_blocks search limit", p.granularity));
    }
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
    out["dense_compute_multiplier_buildable"] = multiplier_buildable;
    if (time) {
      nlohmann::json t;
      t["gpu_hours"] = time->gpu_seconds / budget::kSecondsPerHour;
      t["dense_tflops"] = time->tau.dense_tflops;
      t["dense_benchmark"] = time->tau.dense_benchmark;
      t["routing"] = time->tau.routing;
      t["dense"] = dense_json(time->dense);
      t["granularities"] = nlohmann::json::array();
      std::vector<std::string> used;
      for (const auto& r : time->rows) {
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
      t["flop_optimal_granularity"] = time->rows[time->flop_best].granularity;
      t["time_optimal_granularity"] = time->rows[time->time_best].granularity;
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
  fmt::print("  params {}, tokens {}, loss {:.4f}\n\n", short_count(dense.params), short_count(dense.tokens),
             dense.loss);
  fmt::print("Fine-grained MoE, E = {}, compute-optimal per granularity G (d_model = 64 n_blocks):\n", a.experts);
  fmt::print("  continuous: the scaling law's optimum over real n_blocks; buildable: the best whole n_blocks\n");
  fmt::print("  {:>4} | {:>8} {:>8} {:>8} {:>8} {:>7} | {:>8} {:>7} {:>8} {:>8} {:>8} {:>7}\n", "G", "n_blocks",
             "d_model", "total", "tokens", "loss", "n_blocks", "d_model", "active", "total", "tokens", "loss");
  for (const auto& p : moe_by_g) {
    const auto& c = p.continuous;
    const auto& b = p.buildable;
    fmt::print("  {:>4} | {:>8.2f} {:>8.1f} {:>8} {:>8} {:>7.4f} | {:>8} {:>7} {:>8} {:>8} {:>8} {:>7.4f}{}\n",
               p.granularity, c.n_blocks, c.d_model, short_count(c.total_params), short_count(c.tokens), c.loss,
               b.n_blocks, b.d_model, short_count(b.active_params), short_count(b.total_params), short_count(b.tokens),
               b.loss, p.granularity == moe.granularity ? "  <- best" : "");
  }
  const auto& c = moe.continuous;
  const auto& b = moe.buildable;
  fmt::print("\nFLOP-optimal MoE: G = {}\n", moe.granularity);
  fmt::print("  continuous optimum: n_blocks {:.2f}, d_model {:.1f}, {} active / {} total params, {} tokens, "
             "loss {:.4f}\n",
             c.n_blocks, c.d_model, short_count(c.active_params), short_count(c.total_params), short_count(c.tokens),
             c.loss);
  fmt::print("  buildable:          n_blocks {}, d_model {}, {} active / {} total params, {} tokens, loss {:.4f} "
             "({} above the continuous optimum)\n",
             b.n_blocks, b.d_model, short_count(b.active_params), short_count(b.total_params), short_count(b.tokens),
             b.loss, loss_excess(moe));
  fmt::print("A dense model needs {:.3g}x this compute to reach the continuous optimum's loss ({:.3g}x for the "
             "buildable model's).\n",
             multiplier, multiplier_buildable);

  if (time) {
    fmt::print("\nIn GPU time, with tau measured in {} ({}), E = {}, route:{}:\n", a.results, file->label(), a.experts,
               time->tau.routing);
    fmt::print("  budget {:.4g} GPU-hours; dense tau {:.1f} TFLOP/s ({})\n",
               time->gpu_seconds / budget::kSecondsPerHour, time->tau.dense_tflops, time->tau.dense_benchmark);
    fmt::print("  {:>4} | {:>14} {:>7} | {:>8} {:>9} {:>8} {:>7} {:>7} | {:>8} {:>6}\n", "G", "FLOP-opt GPU-h", "loss",
               "n_blocks", "buildable", "tokens", "loss", "b.loss", "tau_moe", "at d");
    for (std::size_t i = 0; i < time->rows.size(); ++i) {
      const auto& r = time->rows[i];
      const auto& tc = r.time_optimal.continuous;
      fmt::print("  {:>4} | {:>14.4g} {:>7.4f} | {:>8.2f} {:>9} {:>8} {:>7.4f} {:>7.4f} | {:>8.1f} {:>6}{}\n",
                 r.granularity, r.flop_optimal.continuous.gpu_hours, r.flop_optimal.continuous.loss, tc.n_blocks,
                 r.time_optimal.buildable.n_blocks, short_count(r.time_optimal.buildable.tokens), tc.loss,
                 r.time_optimal.buildable.loss, tc.tau_tflops, tc.tau_d_model,
                 i == time->time_best ? "  <- best in time" : "");
    }
    fmt::print("  (left: the FLOP-optimal model at each G and the GPU-hours it takes; middle: the best model at\n"
               "   each G that fits the GPU-hours, continuous and buildable; right: the expert-weight TFLOP/s\n"
               "   that priced it, from the moe_step row at the measured d nearest its d_model)\n");
    fmt::print("  moe_step rows used (E = {}, route:{}, nearest d, largest tok, fastest implementation):\n", a.experts,
               time->tau.routing);
    for (const auto& r : time->rows) {
      for (const auto& [name, what] : rows_used(r)) fmt::print("    G = {}: {} ({})\n", r.granularity, name, what);
    }
    fmt::print("Among the measured G: FLOP-optimal G = {}, time-optimal G = {} (loss {:.4f}, buildable {:.4f}; "
               "dense in the same time: {:.4f}).\n",
               time->rows[time->flop_best].granularity, time->rows[time->time_best].granularity,
               time->rows[time->time_best].time_optimal.continuous.loss,
               time->rows[time->time_best].time_optimal.buildable.loss, time->dense.loss);
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
  a->benchmark_opt = cmd->add_option("--benchmark", a->benchmark,
                                     "benchmark of --results for the dense tau (default: fastest mlp_step)");
  cmd->add_option("--experts", a->experts, "MoE expansion rate E")->capture_default_str();
  cmd->add_option("--route", a->route, "routing of the planned MoE, expert_choice or token_choice: the moe_step rows "
                                       "of --results with this route:... price its experts")
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "print JSON (dense, moe, dense_compute_multiplier, time)");
  cmd->callback([a, &exit_code] {
    run_plan(*a);
    exit_code = 0;
  });
}

}  // namespace wflops::cli
