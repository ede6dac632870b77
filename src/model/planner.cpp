#include "model/planner.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>
#include <utility>

#include "errors.hpp"
#include "model/budget.hpp"
#include "model/flops.hpp"

namespace wflops::planner {

double dense_loss(const DenseLaw& law, double params, double tokens) {
  return law.c + law.a / std::pow(params, law.alpha) + law.b / std::pow(tokens, law.beta);
}

double moe_loss(const MoeLaw& law, double total_params, double tokens, double granularity) {
  return law.c + (law.g / std::pow(granularity, law.gamma) + law.a) / std::pow(total_params, law.alpha) +
         law.b / std::pow(tokens, law.beta);
}

DensePlan plan_dense(double flops, const DenseLaw& law) {
  DensePlan p;
  p.flops = flops;
  const double s = law.alpha + law.beta;
  // 6ND = F: training_run(N, D) = F, so D = F / training_run(N, 1).
  p.params = std::pow(law.alpha * law.a / (law.beta * law.b), 1.0 / s) *
             std::pow(flops / flops::training_run(1.0, 1.0), law.beta / s);
  p.tokens = flops / flops::training_run(p.params, 1.0);
  p.loss = dense_loss(law, p.params, p.tokens);
  return p;
}

double dense_compute_multiplier(double flops, double target_loss, const DenseLaw& law) {
  const double excess_target = target_loss - law.c;
  if (!(excess_target > 0)) return std::numeric_limits<double>::infinity();
  const double excess_dense = plan_dense(flops, law).loss - law.c;
  const double exponent = (law.alpha + law.beta) / (law.alpha * law.beta);
  return std::pow(excess_dense / excess_target, exponent);
}

double moe_d_model(double n_blocks) { return kDModelPerBlock * n_blocks; }

double moe_total_params(double n_blocks, double experts) {
  const double d = moe_d_model(n_blocks);
  return d * d * (8.0 * experts + 4.0) * n_blocks;
}

double moe_active_params(double n_blocks) {
  const double d = moe_d_model(n_blocks);
  return 12.0 * d * d * n_blocks;
}

double moe_flops_per_token(double n_blocks, double experts, double granularity) {
  return flops::moe_block_step_per_token(moe_d_model(n_blocks), experts, granularity) * n_blocks;
}

Minimum minimise_brent(const std::function<double(double)>& f, double lo, double hi, double rel_tol, double abs_tol,
                       int max_iterations) {
  // The golden-section fraction (3 - sqrt 5) / 2: the new point splits the larger part of the
  // bracket so that the parts keep the ratio 1 : 0.618.
  const double golden = (3.0 - std::sqrt(5.0)) / 2.0;
  double a = std::min(lo, hi), b = std::max(lo, hi);
  // x: the best point so far, w: the second best, v: the previous w.
  double x = a + golden * (b - a), w = x, v = x;
  double fx = f(x), fw = fx, fv = fx;
  double step = 0, step_before = 0;  // the last step, and the one before it
  Minimum m;
  for (; m.iterations < max_iterations; ++m.iterations) {
    const double mid = 0.5 * (a + b);
    const double tol = rel_tol * std::abs(x) + abs_tol;
    if (std::abs(x - mid) <= 2.0 * tol - 0.5 * (b - a)) {  // max(x - a, b - x) <= 2 tol
      m.converged = true;
      break;
    }
    bool parabolic = false;
    if (std::abs(step_before) > tol) {
      // The vertex of the parabola through (x, fx), (w, fw), (v, fv) lies at x + p / q, with
      // r = (x - w)(fx - fv), s = (x - v)(fx - fw): p = (x - w) r - (x - v) s over q = 2 (s - r);
      // the sign moves into p so that q >= 0.
      const double r = (x - w) * (fx - fv), s = (x - v) * (fx - fw);
      double p = (x - w) * r - (x - v) * s, q = 2.0 * (s - r);
      if (q < 0) {
        p = -p;
        q = -q;
      }
      // Accept it when it moves less than half the step before last and lands inside (a, b).
      if (std::abs(p) < std::abs(0.5 * q * step_before) && p > q * (a - x) && p < q * (b - x)) {
        step_before = step;
        step = p / q;
        const double u = x + step;
        if (u - a < 2.0 * tol || b - u < 2.0 * tol) step = mid > x ? tol : -tol;  // not onto an end
        parabolic = true;
      }
    }
    if (!parabolic) {
      step_before = x < mid ? b - x : a - x;  // the larger part of the bracket
      step = golden * step_before;
    }
    // Never closer than tol to x: function values that near are equal to rounding.
    const double u = std::abs(step) >= tol ? x + step : x + (step > 0 ? tol : -tol);
    const double fu = f(u);
    if (fu <= fx) {  // u is the new best point; x bounds the bracket on the far side
      (u < x ? b : a) = x;
      v = w, fv = fw;
      w = x, fw = fx;
      x = u, fx = fu;
    } else {  // u bounds the bracket; it may still be the second or third best point
      (u < x ? a : b) = u;
      if (fu <= fw || w == x) {
        v = w, fv = fw;
        w = u, fw = fu;
      } else if (fu <= fv || v == x || v == w) {
        v = u, fv = fu;
      }
    }
  }
  m.x = x;
  m.f = fx;
  return m;
}

namespace {

MoeShape shape_at(double n, double tokens, double experts, double granularity, const MoeLaw& law) {
  MoeShape s;
  s.n_blocks = n;
  s.d_model = moe_d_model(n);
  s.active_params = moe_active_params(n);
  s.total_params = moe_total_params(n, experts);
  s.tokens = tokens;
  s.loss = moe_loss(law, s.total_params, tokens, granularity);
  s.flops = tokens * moe_flops_per_token(n, experts, granularity);
  return s;
}

}  // namespace

MoePlan optimise_blocks(const TokensFor& tokens_for, double experts, double granularity, const MoeLaw& law,
                        const std::vector<double>& breakpoints) {
  // Pieces of x = ln(n_blocks) in [0, ln kMaxBlocks], cut at the breakpoints inside.
  std::vector<double> cuts = {0.0};
  for (double n : breakpoints) {
    if (n > 1.0 && n < kMaxBlocks) cuts.push_back(std::log(n));
  }
  cuts.push_back(std::log(kMaxBlocks));
  std::sort(cuts.begin(), cuts.end());
  auto loss_at_x = [&](double x) {
    const double n = std::exp(x);
    return moe_loss(law, moe_total_params(n, experts), tokens_for(n), granularity);
  };
  MoePlan p;
  p.granularity = granularity;
  std::vector<double> optima;  // the continuous optimum of each piece, as n_blocks
  double best_x = 0, best_f = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
    if (!(cuts[i + 1] > cuts[i])) continue;
    const Minimum m = minimise_brent(loss_at_x, cuts[i], cuts[i + 1], 1.5e-8, 1e-12, kMaxIterations);
    p.iterations += m.iterations;
    optima.push_back(std::exp(m.x));
    if (m.f < best_f || optima.size() == 1) {
      best_f = m.f;
      best_x = m.x;
    }
  }
  const double n_cont = std::exp(best_x);
  p.continuous = shape_at(n_cont, tokens_for(n_cont), experts, granularity, law);
  // A bracket end is never evaluated, so the optimum sits within the tolerance of a limit, not on it.
  p.at_search_bound = n_cont < 1.0 + 1e-6 || n_cont > kMaxBlocks * (1.0 - 1e-6);
  // Whole blocks: on each piece the loss of a fixed tau is convex in ln(n), so the best whole
  // n_blocks of the piece is one of the two around its continuous optimum (clipped to the piece);
  // the best over all pieces' neighbours is the best whole n_blocks overall.
  bool have = false;
  for (double n_opt : optima) {
    for (double n : {std::floor(n_opt), std::ceil(n_opt)}) {
      n = std::min(kMaxBlocks, std::max(1.0, n));
      const MoeShape s = shape_at(n, tokens_for(n), experts, granularity, law);
      if (!have || s.loss < p.buildable.loss || (s.loss == p.buildable.loss && n < p.buildable.n_blocks)) {
        p.buildable = s;
        have = true;
      }
    }
  }
  return p;
}

MoePlan plan_moe(double flops, double experts, double granularity, const MoeLaw& law) {
  // F = (12 d^2 c_f + d E G c_r) * D * n_blocks, solved for D.
  const TokensFor tokens_for = [=](double n) { return flops / moe_flops_per_token(n, experts, granularity); };
  return optimise_blocks(tokens_for, experts, granularity, law);
}

std::vector<double> granularities() {
  std::vector<double> g;
  for (double v = 1; v <= 256; v *= 2) g.push_back(v);
  return g;
}

MoePlan best_of(const std::vector<MoePlan>& plans) {
  return *std::min_element(plans.begin(), plans.end(),
                           [](const MoePlan& x, const MoePlan& y) { return x.continuous.loss < y.continuous.loss; });
}

double moe_gpu_seconds_per_token(double n_blocks, double dense_tflops, double moe_tflops) {
  const double d = moe_d_model(n_blocks);
  const double attention = flops::linear_training_step(4.0 * d * d, 1.0);  // 6 * 4d^2
  const double experts = flops::moe_expert_weight_flops(d, 1.0);           // 6 * 8d^2
  return n_blocks * (attention / (dense_tflops * budget::kTera) + experts / (moe_tflops * budget::kTera));
}

const MoeTau& nearest_row(const std::vector<MoeTau>& rows, double d_model) {
  if (rows.empty()) throw std::logic_error("nearest_row: no rows");
  const MoeTau* best = &rows.front();
  for (const MoeTau& r : rows) {
    const double dr = std::abs(std::log(r.d_model / d_model)), db = std::abs(std::log(best->d_model / d_model));
    if (dr < db || (dr == db && r.d_model > best->d_model)) best = &r;
  }
  return *best;
}

namespace {

void set_tau(MoeShape& s, const MoeTau& r) {
  s.tau_benchmark = r.benchmark;
  s.tau_tflops = r.tflops;
  s.tau_d_model = r.d_model;
}

}  // namespace

MoePlan plan_moe_in_time(double gpu_seconds, double experts, double granularity, double dense_tflops,
                         const std::vector<MoeTau>& rows, const MoeLaw& law) {
  if (rows.empty()) throw std::logic_error("plan_moe_in_time: no rows");
  const TokensFor tokens_for = [&](double n) {
    return gpu_seconds / moe_gpu_seconds_per_token(n, dense_tflops, nearest_row(rows, moe_d_model(n)).tflops);
  };
  // tau switches from one row to the next where d_model is the geometric mean of their d.
  std::vector<double> breakpoints;
  for (std::size_t i = 0; i + 1 < rows.size(); ++i) {
    breakpoints.push_back(std::sqrt(rows[i].d_model * rows[i + 1].d_model) / kDModelPerBlock);
  }
  MoePlan p = optimise_blocks(tokens_for, experts, granularity, law, breakpoints);
  for (MoeShape* s : {&p.continuous, &p.buildable}) {
    s->gpu_hours = gpu_seconds / budget::kSecondsPerHour;
    set_tau(*s, nearest_row(rows, s->d_model));
  }
  return p;
}

MoePlan plan_moe_in_time(double gpu_seconds, double experts, double granularity, double dense_tflops, double moe_tflops,
                         const MoeLaw& law) {
  MoeTau one;
  one.granularity = granularity;
  one.d_model = 1;  // any d: the only row is the nearest
  one.tflops = one.raw_tflops = moe_tflops;
  MoePlan p = plan_moe_in_time(gpu_seconds, experts, granularity, dense_tflops, std::vector<MoeTau>{one}, law);
  for (MoeShape* s : {&p.continuous, &p.buildable}) s->tau_d_model = 0;
  return p;
}

void price_in_time(MoeShape& shape, double dense_tflops, const std::vector<MoeTau>& rows) {
  const MoeTau& r = nearest_row(rows, shape.d_model);
  shape.gpu_hours =
      shape.tokens * moe_gpu_seconds_per_token(shape.n_blocks, dense_tflops, r.tflops) / budget::kSecondsPerHour;
  set_tau(shape, r);
}

}  // namespace wflops::planner

namespace wflops::planner {

namespace {

bool power_of_two_granularity(double g) {
  for (double v : granularities()) {
    if (g == v) return true;
  }
  return false;
}

// The benchmark's flops counter should be the expert weight FLOPs 6 * 8d^2 * tok
// (docs/conventions.md); if it also counted routing, rescale so that tau is expert-weight FLOP/s over
// the measured time, the quantity moe_gpu_seconds_per_token() divides by.
double expert_weight_tflops(const BenchmarkResult& b, const BenchmarkName& n) {
  const auto d = n.number("d"), tok = n.number("tok");
  if (!d || !tok || !b.flops || !(*b.flops > 0)) return *b.tflops;
  return *b.tflops * flops::moe_expert_weight_flops(*d, *tok) / *b.flops;
}

}  // namespace

MeasuredTau measured_tau(const ResultFile& file, double experts, const std::string& dense_benchmark,
                         const std::string& routing) {
  MeasuredTau m;
  if (!dense_benchmark.empty()) {
    m.dense_tflops = measured_tflops(file, dense_benchmark);
    m.dense_benchmark = dense_benchmark;
  } else {
    for (const auto& b : file.benchmarks) {
      if (b.failed || !b.tflops || parse_benchmark_name(b.name).family != "mlp_step") continue;
      if (*b.tflops > m.dense_tflops) {
        m.dense_tflops = *b.tflops;
        m.dense_benchmark = b.name;
      }
    }
    if (m.dense_benchmark.empty()) {
      throw UserError(fmt::format(
          "'{}' has no successful mlp_step benchmark for the dense tau; name one with --benchmark", file.path));
    }
  }
  // The MoE rows that match the planned configuration: E = experts and the planned routing
  // (either changes the work per token: E the router's width and the expert count, the routing
  // the dispatch and the balance of tokens over experts). The d is matched later, per model, by
  // nearest_row(). At one (G, d), the largest token count is the nearest to a training step (a
  // step of a large run carries 10^4-10^5 tokens per GPU) and is kept; of the implementations
  // there, the fastest, since the run is free to use it.
  m.routing = routing;
  std::map<std::pair<double, double>, MoeTau> best;  // (G, d) -> row
  std::map<double, int> other_experts;
  std::map<std::string, int> other_routes;
  for (const auto& b : file.benchmarks) {
    const auto n = parse_benchmark_name(b.name);
    if (n.family != "moe_step" || b.failed || !b.tflops || !(*b.tflops > 0)) continue;
    const auto g = n.number("G"), d = n.number("d"), e = n.number("E"), tok = n.number("tok");
    const auto route = n.param("route");
    if (!g || !d || !e || !tok || !(*d > 0) || !(*tok > 0) || !power_of_two_granularity(*g)) continue;
    if (*e != experts) {
      ++other_experts[*e];
      continue;
    }
    if (route.value_or("") != routing) {
      ++other_routes[route.value_or("(none)")];
      continue;
    }
    const MoeTau row{*g, *d, *tok, expert_weight_tflops(b, n), *b.tflops, b.name};
    auto it = best.find({*g, *d});
    if (it == best.end()) {
      best.emplace(std::make_pair(*g, *d), row);
    } else if (row.tokens > it->second.tokens || (row.tokens == it->second.tokens && row.tflops > it->second.tflops)) {
      it->second = row;
    }
  }
  for (const auto& [key, row] : best) m.moe.push_back(row);  // the map's order: G, then d
  if (m.moe.empty()) {
    std::string seen;
    for (const auto& [e, count] : other_experts) seen += fmt::format("{}E = {}", seen.empty() ? "" : ", ", e);
    for (const auto& [r, count] : other_routes) {
      seen += fmt::format("{}route:{} at E = {}", seen.empty() ? "" : ", ", r, experts);
    }
    m.notes.push_back(fmt::format("'{}' has no successful moe_step benchmark with E = {} and route:{}{}", file.path,
                                  experts, routing, seen.empty() ? "" : " (it has " + seen + ")"));
  }
  return m;
}

std::vector<double> MeasuredTau::measured_granularities() const {
  std::vector<double> g;
  for (const MoeTau& r : moe) {
    if (g.empty() || g.back() != r.granularity) g.push_back(r.granularity);
  }
  return g;
}

std::vector<MoeTau> MeasuredTau::at_granularity(double g) const {
  std::vector<MoeTau> rows;
  for (const MoeTau& r : moe) {
    if (r.granularity == g) rows.push_back(r);
  }
  return rows;
}

}  // namespace wflops::planner

namespace wflops::planner {

namespace {

// The search in GPU time, `gpu_seconds` of it, at every G the file measured; empty rows when it
// measured none.
TimeSearch search_in_time(double flops, double experts, const MeasuredTau& m, double gpu_seconds) {
  TimeSearch t;
  t.tau = m;
  t.gpu_seconds = gpu_seconds;
  t.dense = plan_dense(t.gpu_seconds * m.dense_tflops * budget::kTera);
  for (double g : m.measured_granularities()) {
    TimeRow row;
    row.granularity = g;
    row.rows = m.at_granularity(g);
    row.flop_optimal = plan_moe(flops, experts, g);
    price_in_time(row.flop_optimal.continuous, m.dense_tflops, row.rows);
    price_in_time(row.flop_optimal.buildable, m.dense_tflops, row.rows);
    row.time_optimal = plan_moe_in_time(t.gpu_seconds, experts, g, m.dense_tflops, row.rows);
    t.rows.push_back(row);
  }
  for (std::size_t i = 1; i < t.rows.size(); ++i) {
    if (t.rows[i].flop_optimal.continuous.loss < t.rows[t.flop_best].flop_optimal.continuous.loss) t.flop_best = i;
    if (t.rows[i].time_optimal.continuous.loss < t.rows[t.time_best].time_optimal.continuous.loss) t.time_best = i;
  }
  return t;
}

// tau read from a layer of quite another width is an extrapolation: the note names the G where a
// model was priced over kFarRatio from its d, and the worst case. Empty when there is none.
std::string far_from_measured_note(const TimeSearch& t) {
  std::string far_g;
  double far_d = 0, far_tau_d = 0, far_ratio = 0;
  for (const auto& r : t.rows) {
    bool far = false;
    for (const MoeShape* s : {&r.flop_optimal.continuous, &r.flop_optimal.buildable, &r.time_optimal.continuous,
                              &r.time_optimal.buildable}) {
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
  if (far_g.empty()) return {};
  return fmt::format(
      "G = {}: a planned model's d_model is over {}x from the nearest measured d "
      "(worst: {:.0f} priced at d = {}); measure moe_step nearer that d for its tau",
      far_g, kFarRatio, far_d, far_tau_d);
}

}  // namespace

Plan plan_budget(double flops, double experts, const std::optional<MeasuredTau>& measured,
                 std::optional<double> gpu_seconds) {
  Plan p;
  p.flops = flops;
  p.experts = experts;
  // The best G is the one with the lowest continuous loss (the scaling law's optimum), its
  // buildable model reported beside it.
  p.dense = plan_dense(flops);
  for (double g : granularities()) p.moe_by_granularity.push_back(plan_moe(flops, experts, g));
  p.moe = best_of(p.moe_by_granularity);
  p.dense_compute_multiplier = dense_compute_multiplier(flops, p.moe.continuous.loss);
  p.dense_compute_multiplier_buildable = dense_compute_multiplier(flops, p.moe.buildable.loss);
  if (measured) {
    p.notes = measured->notes;
    if (measured->moe.empty()) {
      p.notes.push_back("no search in time");
    } else {
      p.time = search_in_time(flops, experts, *measured,
                              gpu_seconds ? *gpu_seconds : flops / (measured->dense_tflops * budget::kTera));
      std::string far = far_from_measured_note(*p.time);
      if (!far.empty()) p.notes.push_back(std::move(far));
    }
  }
  for (const auto& m : p.moe_by_granularity) {
    if (m.at_search_bound) {
      p.notes.push_back(fmt::format("G = {}: the optimum sits on the n_blocks search limit", m.granularity));
    }
  }
  return p;
}

namespace {

bool plannable(double flops, double experts) {
  std::vector<MoePlan> plans;
  for (double g : granularities()) plans.push_back(plan_moe(flops, experts, g));
  return !best_of(plans).at_search_bound;
}

// v rounded to two significant digits, up or down.
double two_digits(double v, bool up) {
  const double unit = std::pow(10.0, std::floor(std::log10(v)) - 1.0);
  return (up ? std::ceil(v / unit) : std::floor(v / unit)) * unit;
}

// The edge between decades `inside` (plannable) and `outside` (not), by bisection of log10 F to
// a factor of about 1.0002; the plannable end of the last bracket.
double edge(double experts, double inside, double outside) {
  while (std::abs(inside - outside) > 1e-4) {
    const double mid = 0.5 * (inside + outside);
    (plannable(std::pow(10.0, mid), experts) ? inside : outside) = mid;
  }
  return std::pow(10.0, inside);
}

}  // namespace

FlopRange plannable_flops(double experts) {
  // The decades 10^0 .. kMaxFlops; the plannable ones are one run of them (a model grows with its
  // budget, so it leaves the lower search limit once and reaches the upper one once).
  const int top = static_cast<int>(std::lround(std::log10(budget::kMaxFlops)));
  int first = -1, last = -1;
  for (int e = 0; e <= top; ++e) {
    if (plannable(std::pow(10.0, e), experts)) {
      if (first < 0) first = e;
      last = e;
    }
  }
  FlopRange r;
  if (first < 0) {
    r.lo = budget::kMaxFlops;
    r.hi = 1;
    return r;
  }
  r.lo = first == 0 ? 1.0 : two_digits(edge(experts, first, first - 1), true);
  r.hi = last == top ? budget::kMaxFlops : two_digits(edge(experts, last, last + 1), false);
  return r;
}

}  // namespace wflops::planner
