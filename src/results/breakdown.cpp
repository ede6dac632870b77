#include "results/breakdown.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "errors.hpp"
#include "json_object.hpp"
#include "model/flops_model_phases.hpp"

namespace wflops {

namespace {

using model_phases::Kind;

std::optional<double> counter(const BenchmarkResult& b, const std::string& key) {
  const auto it = b.counters.find(key);
  if (it == b.counters.end() || !std::isfinite(it->second)) return std::nullopt;
  return it->second;
}

// Whether a fused implementation puts phase q's work inside phase p's time.
bool folds_into(const std::string& q, const std::string& p, flops::ModelArch arch) {
  const char* host = model_phases::fused_into(q, arch);
  return host && p == host;
}

std::optional<double> phase_ms(const BenchmarkResult* b, const std::string& phase) {
  if (!b) return std::nullopt;
  const auto ms = counter(*b, model_phases::kMs + phase);
  if (ms && *ms <= 0) return std::nullopt;  // a phase that took no time was not recorded
  return ms;
}

// Shape values as they appear in names: whole numbers without a decimal point.
std::string whole(double v) { return fmt::format("{:.0f}", v); }
bool is_whole(double v) { return std::isfinite(v) && v >= 1 && v == std::floor(v); }

const BenchmarkResult* usable(const ResultFile& file, const std::string& name) {
  const BenchmarkResult* b = file.find(name);
  return b && !b->failed ? b : nullptr;
}

// The fastest benchmark of `family`, implementation `impl` (any when empty) and `dtype` whose name
// ends in `shape` after the dtype (any shape when empty), by tflops or, with `by_gbps`, by gbps;
// nullptr when there is none.
const BenchmarkResult* fastest(const ResultFile& file, const std::string& family, const std::string& impl,
                               const std::string& dtype, const std::string& shape, bool by_gbps) {
  const BenchmarkResult* best = nullptr;
  double best_value = 0;
  for (const BenchmarkResult& b : file.benchmarks) {
    if (b.failed) continue;
    const BenchmarkName n = parse_benchmark_name(b.name);
    if (n.family != family || (!impl.empty() && n.implementation != impl) || n.dtype != dtype) continue;
    if (!shape.empty()) {
      const std::string prefix = family + "/" + n.implementation + "/" + n.dtype + "/";
      if (b.name.compare(0, prefix.size(), prefix) != 0 || b.name.substr(prefix.size()) != shape) continue;
    }
    const std::optional<double> value = by_gbps ? b.gbps : b.tflops;
    if (value && *value > best_value) {
      best = &b;
      best_value = *value;
    }
  }
  return best;
}

// The other of eager and fused with everything else in the name the same; "" for other words.
std::string other_implementation_name(const std::string& name, const std::string& impl) {
  const std::string other = impl == "eager" ? "fused" : impl == "fused" ? "eager" : "";
  if (other.empty()) return "";
  const std::string from = std::string(model_phases::kFamily) + "/" + impl + "/";
  if (name.compare(0, from.size(), from) != 0) return "";
  return std::string(model_phases::kFamily) + "/" + other + "/" + name.substr(from.size());
}

// The first of `names` that the file has, not failed and with a tflops figure.
const BenchmarkResult* first_usable(const ResultFile& file, const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    if (const BenchmarkResult* b = usable(file, name); b && b->tflops) return b;
  }
  return nullptr;
}

void fill_rows(const ResultFile& file, const BenchmarkResult& step, const BenchmarkResult* other, Breakdown& s) {
  const bool eager = s.implementation == "eager";
  const StepAlone names = step_alone(s.implementation, s.dtype, s.shape);
  std::map<std::string, std::string> gemm_alone;  // component -> fastest matmul of its forward shape
  for (const auto& [component, shape] : names.gemm_shapes) {
    if (const BenchmarkResult* b = fastest(file, "matmul", "", s.dtype, shape, false)) gemm_alone[component] = b->name;
  }
  const auto known = [](const std::string& phase) { return model_phases::find_phase(phase) != nullptr; };
  std::vector<model_phases::Phase> all = model_phases::phases();
  for (const auto& [key, value] : step.counters) {
    // A phase this reader does not know (a newer workload's) is shown as memory-bound, not dropped.
    const std::string prefix = model_phases::kMs;
    if (key.compare(0, prefix.size(), prefix) == 0 && !known(key.substr(prefix.size()))) {
      all.push_back({key.substr(prefix.size()), key.substr(prefix.size()), model_phases::Direction::bwd, Kind::memory});
    }
  }
  for (const model_phases::Phase& p : all) {
    BreakdownRow r;
    r.phase = p.name;
    r.kind = p.kind;
    r.ms = phase_ms(&step, p.name);
    const char* host = model_phases::fused_into(p.name, s.shape.arch);
    if (!r.ms) {
      if (!host || !phase_ms(&step, host)) continue;  // neither run nor folded: not part of this step
      r.folded_into = host;
      s.rows.push_back(std::move(r));
      continue;
    }
    for (const model_phases::Phase& q : all) {
      if (folds_into(q.name, p.name, s.shape.arch) && !phase_ms(&step, q.name)) {
        r.holds.push_back(q.name);
      }
    }
    s.phases_ms += *r.ms;
    if (p.kind == Kind::memory) {
      r.gbps = counter(step, model_phases::kGbps + p.name);
      if (!r.gbps) {
        if (const auto bytes = counter(step, model_phases::kBytes + p.name)) r.gbps = *bytes / *r.ms / 1e6;
      }
      if (r.gbps && s.best_copy_gbps) r.pct_of_ceiling = 100.0 * *r.gbps / *s.best_copy_gbps;
    } else {
      if (const auto flops = counter(step, model_phases::kFlops + p.name)) r.tflops = *flops / *r.ms / 1e9;
      if (r.tflops && s.best_matmul_tflops) r.pct_of_ceiling = 100.0 * *r.tflops / *s.best_matmul_tflops;
    }
    // The same work in the other implementation. A phase the other folds into a fused kernel is
    // compared there, on the row of the phase that holds it.
    if (other) {
      const bool folded_there = host && !phase_ms(other, p.name) && phase_ms(other, host);
      if (folded_there) {
        r.compared_in = host;
      } else if (phase_ms(other, p.name)) {
        std::vector<std::string> members = {p.name};
        for (const model_phases::Phase& q : all) {
          if (!folds_into(q.name, p.name, s.shape.arch)) continue;
          if (!phase_ms(&step, q.name) || !phase_ms(other, q.name)) members.push_back(q.name);
        }
        double mine = 0, theirs = 0;
        for (const std::string& m : members) {
          mine += phase_ms(&step, m).value_or(0);
          theirs += phase_ms(other, m).value_or(0);
        }
        r.other_ms = theirs;
        r.gain = eager ? mine / theirs : theirs / mine;
        if (members.size() > 1) {
          for (const std::string& m : members) r.gain_over += (r.gain_over.empty() ? "" : " + ") + m;
        }
      }
    }
    const BenchmarkResult* alone = nullptr;
    if (p.kind == Kind::gemm && gemm_alone.count(p.component)) alone = file.find(gemm_alone[p.component]);
    if (p.kind == Kind::attention) {
      alone =
          first_usable(file, p.direction == model_phases::Direction::bwd ? names.attention_bwd : names.attention_fwd);
    }
    if (alone && alone->tflops && r.tflops) {
      r.alone = alone->name;
      r.alone_tflops = alone->tflops;
      r.over_alone = *r.tflops / *alone->tflops;
    }
    s.rows.push_back(std::move(r));
  }
  for (BreakdownRow& r : s.rows) {
    if (!r.ms) continue;
    r.share_pct = 100.0 * *r.ms / s.phases_ms;
    double& share = r.kind == Kind::gemm        ? s.gemm_share_pct
                    : r.kind == Kind::attention ? s.attention_share_pct
                                                : s.memory_share_pct;
    share += r.share_pct;
  }
}

// Sums of the rows of `phases` (every present one): time and FLOPs.
std::pair<double, double> sum_of(const Breakdown& s, const BenchmarkResult& step,
                                 const std::vector<std::string>& phases) {
  double ms = 0, flops = 0;
  for (const BreakdownRow& r : s.rows) {
    if (!r.ms || std::find(phases.begin(), phases.end(), r.phase) == phases.end()) continue;
    ms += *r.ms;
    flops += counter(step, model_phases::kFlops + r.phase).value_or(0);
  }
  return {ms, flops};
}

void fill_parts(const ResultFile& file, const BenchmarkResult& step, Breakdown& s) {
  const auto part = [&](const std::string& what, const std::vector<std::string>& phases) {
    BreakdownPart p;
    p.what = what;
    const auto [ms, flops] = sum_of(s, step, phases);
    p.ms = ms;
    p.share_pct = s.phases_ms > 0 ? 100.0 * ms / s.phases_ms : 0;
    if (ms > 0 && flops > 0) p.tflops = flops / ms / 1e9;
    return p;
  };
  BreakdownPart mlp =
      part("mlp (mlp_up + activation + mlp_down, fwd + bwd)",
           {"fwd_mlp_up", "fwd_activation", "fwd_mlp_down", "bwd_mlp_down", "bwd_activation", "bwd_mlp_up"});
  const StepAlone names = step_alone(s.implementation, s.dtype, s.shape);
  if (const BenchmarkResult* alone = first_usable(file, {names.mlp}); alone && mlp.tflops) {
    mlp.alone = alone->name;
    mlp.alone_tflops = alone->tflops;
  }
  BreakdownPart attention = part("attention core (fwd + bwd)", {"fwd_attention", "bwd_attention"});
  const BenchmarkResult* fwd = first_usable(file, names.attention_fwd);
  const BenchmarkResult* bwd = first_usable(file, names.attention_bwd);
  const auto f_fwd = counter(step, std::string(model_phases::kFlops) + "fwd_attention");
  const auto f_bwd = counter(step, std::string(model_phases::kFlops) + "bwd_attention");
  if (fwd && bwd && f_fwd && f_bwd && attention.tflops) {
    // Alone, the two passes take f_fwd / tau_fwd + f_bwd / tau_bwd: the rate of the pair is the
    // FLOPs over that time, weighted as the model weights them.
    attention.alone = fwd->name + " + " + bwd->name;
    attention.alone_tflops = (*f_fwd + *f_bwd) / (*f_fwd / *fwd->tflops + *f_bwd / *bwd->tflops);
  }
  std::vector<std::string> gemm_phases;
  for (const model_phases::Phase& p : model_phases::phases()) {
    if (p.kind == Kind::gemm) gemm_phases.push_back(p.name);
  }
  BreakdownPart gemms = part("all GEMM phases", gemm_phases);
  if (s.best_matmul_tflops && gemms.tflops) {
    gemms.alone = s.best_matmul;
    gemms.alone_tflops = s.best_matmul_tflops;
  }
  for (BreakdownPart* p : {&mlp, &attention, &gemms}) {
    if (p->ms <= 0) continue;
    if (p->alone_tflops && p->tflops) p->over_alone = *p->tflops / *p->alone_tflops;
    s.parts.push_back(std::move(*p));
  }
}

std::string list_of(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

StepAlone step_alone(const std::string& impl, const std::string& dtype, const flops::ModelStepShape& shape) {
  StepAlone out;
  for (const flops::ModelGemm& g : flops::model_gemms(shape)) {
    if (!is_whole(g.out) || !is_whole(g.in)) continue;
    out.gemm_shapes.emplace_back(g.component,
                                 fmt::format("m:{}/n:{}/k:{}", whole(shape.tokens()), whole(g.out), whole(g.in)));
  }
  // The attention core: eager runs our unfused attention; fused runs cuDNN's where present, else
  // our FlashAttention-2 (and a step of another implementation, a peer's, is read against the
  // fastest fused one there is).
  const double head_dim = shape.hidden / shape.heads;
  if (is_whole(head_dim)) {
    const std::vector<std::string> order =
        impl == "eager" ? std::vector<std::string>{"unfused"} : std::vector<std::string>{"cudnn", "fused"};
    for (const bool backward : {false, true}) {
      for (const std::string& word : order) {
        (backward ? out.attention_bwd : out.attention_fwd)
            .push_back(fmt::format("{}/{}/{}/b:{}/h:{}/s:{}/d:{}/causal:1",
                                   backward ? "attention_bwd" : "attention_fwd", word, dtype, whole(shape.batch),
                                   whole(shape.heads), whole(shape.seq), whole(head_dim)));
      }
    }
  }
  // The MLP: gpt2's bias + GELU MLP, llama's SwiGLU, unfused for eager and fused otherwise.
  const bool gpt2 = shape.arch == flops::ModelArch::gpt2;
  out.mlp_word = impl == "eager" ? (gpt2 ? "unfused_gelu" : "unfused_swiglu") : (gpt2 ? "fused_gelu" : "fused_swiglu");
  out.mlp = fmt::format("mlp_step/{}/{}/d:{}/ff:{}/tok:{}", out.mlp_word, dtype, whole(shape.hidden), whole(shape.ffn),
                        whole(shape.tokens()));
  return out;
}

std::vector<std::string> model_step_names(const ResultFile& file) {
  std::vector<std::string> out;
  for (const BenchmarkResult& b : file.benchmarks) {
    if (!b.failed && parse_benchmark_name(b.name).family == model_phases::kFamily) out.push_back(b.name);
  }
  return out;
}

Breakdown breakdown(const ResultFile& file, const std::string& name) {
  const BenchmarkResult* step = file.find(name);
  if (!step) throw UserError(fmt::format("'{}' has no benchmark named '{}'", file.path, name));
  const auto shape = model_phases::parse_model_step_shape(name);
  if (!shape) {
    throw UserError(fmt::format("'{}' in '{}' is not a model step (model_step/<impl>/<dtype>/arch:gpt2|llama/...)",
                                name, file.path));
  }
  if (step->failed) throw UserError(fmt::format("'{}' in '{}' failed: {}", name, file.path, step->error_message));
  if (!step->tflops || !step->flops || *step->tflops <= 0 || *step->flops <= 0) {
    throw UserError(fmt::format("'{}' in '{}' has no flops and tflops counters", name, file.path));
  }
  Breakdown s;
  s.benchmark = name;
  const BenchmarkName n = parse_benchmark_name(name);
  s.implementation = n.implementation;
  s.dtype = n.dtype;
  s.shape = *shape;
  s.tflops = *step->tflops;
  s.step_ms = *step->flops / *step->tflops / 1e9;
  s.pct_peak = step->pct_peak;
  if (const auto model = counter(*step, model_phases::kModelFlops)) s.model_tflops = *model / s.step_ms / 1e9;
  s.pct_peak_model = counter(*step, model_phases::kPctPeakModel);
  if (const BenchmarkResult* mm = fastest(file, "matmul", "", s.dtype, "", false)) {
    s.best_matmul = mm->name;
    s.best_matmul_tflops = mm->tflops;
    s.pct_best_matmul = 100.0 * s.tflops / *mm->tflops;
  }
  // The copy moves fp32 words; its bandwidth is the ceiling of any memory-bound pass, whatever dtype.
  if (const BenchmarkResult* copy = fastest(file, "cast", "d2d_copy", "fp32", "", true)) {
    s.best_copy = copy->name;
    s.best_copy_gbps = copy->gbps;
  }
  const std::string other_name = other_implementation_name(name, s.implementation);
  const BenchmarkResult* other = other_name.empty() ? nullptr : usable(file, other_name);
  if (other) s.other = other_name;
  fill_rows(file, *step, other, s);
  if (s.phases_ms <= 0) {
    throw UserError(
        fmt::format("'{}' in '{}' has no phase_ms_<phase> counters: nothing to break down", name, file.path));
  }
  fill_parts(file, *step, s);
  return s;
}

std::vector<Breakdown> breakdowns(const ResultFile& file, const std::string& name, std::vector<std::string>* skipped) {
  const std::vector<std::string> steps = model_step_names(file);
  if (steps.empty()) {
    throw UserError(fmt::format("'{}' has no model step (no model_step/... benchmark that ran)", file.path));
  }
  if (!name.empty()) {
    if (std::find(steps.begin(), steps.end(), name) == steps.end() && !file.find(name)) {
      throw UserError(
          fmt::format("'{}' has no benchmark named '{}'; its model steps: {}", file.path, name, list_of(steps)));
    }
    return {breakdown(file, name)};
  }
  if (skipped) {
    // Failed steps have no figures to break down; the table still says they were there.
    for (const BenchmarkResult& b : file.benchmarks) {
      if (b.failed && parse_benchmark_name(b.name).family == model_phases::kFamily) {
        skipped->push_back(fmt::format("{} failed: {}", b.name, b.error_message));
      }
    }
  }
  std::vector<Breakdown> out;
  std::optional<UserError> first;
  for (const std::string& s : steps) {
    try {
      out.push_back(breakdown(file, s));
    } catch (const UserError& e) {
      if (!first) first = e;
      if (skipped) skipped->push_back(e.what());
    }
  }
  if (out.empty()) throw *first;
  return out;
}

namespace {

std::string opt(const std::optional<double>& v, const char* format) {
  return v ? fmt::format(fmt::runtime(format), *v) : std::string("-");
}

std::string format_one(const Breakdown& s) {
  std::string out = s.benchmark + "\n";
  out += fmt::format("  step {:.2f} ms: {:.1f} weight-TFLOP/s", s.step_ms, s.tflops);
  if (s.pct_peak) out += fmt::format(" ({:.1f}% of peak)", *s.pct_peak);
  if (s.pct_best_matmul) {
    out += fmt::format(", {:.1f}% of the best {} matmul ({:.1f}, {})", *s.pct_best_matmul, s.dtype,
                       *s.best_matmul_tflops, s.best_matmul);
  }
  out += "\n";
  if (s.model_tflops) {
    out += fmt::format("  model FLOPs (weight + attention) {:.1f} TFLOP/s", *s.model_tflops);
    if (s.pct_peak_model) out += fmt::format(" ({:.1f}% of peak)", *s.pct_peak_model);
    out += "\n";
  }
  out += fmt::format(
      "  phases, timed apart, sum to {:.2f} ms ({:.1f}% of the step): GEMMs {:.1f}%, attention core "
      "{:.1f}%, memory-bound {:.1f}%\n",
      s.phases_ms, 100.0 * s.phases_ms / s.step_ms, s.gemm_share_pct, s.attention_share_pct, s.memory_share_pct);
  if (!s.other.empty()) out += "  eager/fused: the eager step's time over the fused step's, against " + s.other + "\n";
  if (s.best_copy_gbps) {
    out +=
        fmt::format("  GB/s rows are read against the device copy {} ({:.0f} GB/s)\n", s.best_copy, *s.best_copy_gbps);
  }
  out += fmt::format("\n  {:<15} {:>8} {:>6} {:>14} {:>8} {:>11} {:>10} {:>8}  {}\n", "phase", "ms", "share", "rate",
                     "% ceil", "eager/fused", "alone", "in/alone", "notes");
  for (const BreakdownRow& r : s.rows) {
    if (!r.ms) {
      out += fmt::format("  {:<15} {:>8} {:>6} {:>14} {:>8} {:>11} {:>10} {:>8}  in {}\n", r.phase, "-", "-", "-", "-",
                         "-", "-", "-", r.folded_into);
      continue;
    }
    const std::string rate = r.tflops ? fmt::format("{:.1f} TFLOP/s", *r.tflops)
                             : r.gbps ? fmt::format("{:.0f} GB/s", *r.gbps)
                                      : std::string("-");
    std::string notes;
    if (!r.holds.empty()) notes = "holds " + list_of(r.holds);
    if (!r.gain_over.empty()) notes += (notes.empty() ? "" : "; ") + std::string("gain over ") + r.gain_over;
    if (!r.compared_in.empty()) notes += (notes.empty() ? "" : "; ") + std::string("compared in ") + r.compared_in;
    out += fmt::format("  {:<15} {:>8.3f} {:>5.1f}% {:>14} {:>8} {:>11} {:>10} {:>8}  {}\n", r.phase, *r.ms,
                       r.share_pct, rate, opt(r.pct_of_ceiling, "{:.1f}%"), opt(r.gain, "{:.2f}x"),
                       opt(r.alone_tflops, "{:.1f}"), opt(r.over_alone, "{:.2f}"), notes);
  }
  out += "\n  parts against the same part alone:\n";
  for (const BreakdownPart& p : s.parts) {
    out +=
        fmt::format("  {:<50} {:>8.3f} ms {:>5.1f}% {:>8} TFLOP/s", p.what, p.ms, p.share_pct, opt(p.tflops, "{:.1f}"));
    if (p.alone_tflops) {
      out += fmt::format(", alone {:.1f}: in/alone {:.2f} ({})", *p.alone_tflops, *p.over_alone, p.alone);
    } else {
      out += ", alone: not in the file";
    }
    out += "\n";
  }
  std::map<std::string, std::vector<std::string>> alone_of;  // standalone benchmark -> the phases read against it
  for (const BreakdownRow& r : s.rows) {
    if (!r.alone.empty()) alone_of[r.alone].push_back(r.phase);
  }
  if (!alone_of.empty()) out += "\n  alone rows:\n";
  for (const auto& [name, phases] : alone_of) out += fmt::format("  {:<32} {}\n", list_of(phases), name);
  return out;
}

const char* kind_name(Kind k) { return k == Kind::gemm ? "gemm" : k == Kind::attention ? "attention" : "memory"; }

}  // namespace

std::string format_breakdowns(const ResultFile& file, const std::vector<Breakdown>& all,
                              const std::vector<std::string>& skipped) {
  std::string out = fmt::format("Where the model step's time goes: {}, {}\n", file.path, file.label());
  out +=
      "rate: TFLOP/s of GEMM phases (weight FLOPs) and the attention core (attention FLOPs), GB/s of memory-bound\n"
      "phases (least bytes); % ceil: of the best matmul of the dtype or of the device copy in the same file;\n"
      "alone: the same part benchmarked alone (GEMMs: the matmul of the forward's shape); in/alone: rate over it\n";
  for (const Breakdown& s : all) out += "\n" + format_one(s);
  if (!skipped.empty()) out += "\nleft out:\n";
  for (const std::string& why : skipped) out += "  " + why + "\n";
  return out;
}

nlohmann::json breakdowns_json(const ResultFile& file, const std::vector<Breakdown>& all,
                               const std::vector<std::string>& skipped) {
  nlohmann::json out;
  out["file"] = file.path;
  out["gpu"] = file.label();
  out["left_out"] = skipped;
  out["steps"] = nlohmann::json::array();
  for (const Breakdown& s : all) {
    nlohmann::json j =
        object_of("benchmark", s.benchmark, "implementation", s.implementation, "dtype", s.dtype, "step_ms", s.step_ms,
                  "tflops", s.tflops, "pct_peak", s.pct_peak, "model_tflops", s.model_tflops, "pct_peak_model",
                  s.pct_peak_model, "best_matmul", s.best_matmul, "best_matmul_tflops", s.best_matmul_tflops,
                  "pct_best_matmul", s.pct_best_matmul, "best_copy", s.best_copy, "best_copy_gbps", s.best_copy_gbps,
                  "phases_ms", s.phases_ms, "gemm_share_pct", s.gemm_share_pct, "attention_share_pct",
                  s.attention_share_pct, "memory_share_pct", s.memory_share_pct, "other", s.other);
    j["phases"] = nlohmann::json::array();
    for (const BreakdownRow& r : s.rows) {
      j["phases"].push_back(object_of("phase", r.phase, "kind", kind_name(r.kind), "ms", r.ms, "folded_into",
                                      r.folded_into, "holds", r.holds, "share_pct", r.share_pct, "tflops", r.tflops,
                                      "gbps", r.gbps, "pct_of_ceiling", r.pct_of_ceiling, "other_ms", r.other_ms,
                                      "gain", r.gain, "gain_over", r.gain_over, "compared_in", r.compared_in, "alone",
                                      r.alone, "alone_tflops", r.alone_tflops, "over_alone", r.over_alone));
    }
    j["parts"] = nlohmann::json::array();
    for (const BreakdownPart& p : s.parts) {
      j["parts"].push_back(object_of("what", p.what, "ms", p.ms, "share_pct", p.share_pct, "tflops", p.tflops, "alone",
                                     p.alone, "alone_tflops", p.alone_tflops, "over_alone", p.over_alone));
    }
    out["steps"].push_back(j);
  }
  return out;
}

}  // namespace wflops
