#include "results/compare.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "errors.hpp"
#include "json_object.hpp"

namespace wflops::compare {

namespace {

// The implementation word of "family/implementation/dtype/...": "" when the name has no second part.
std::string implementation_of(const std::string& name) {
  const auto first = name.find('/');
  if (first == std::string::npos) return "";
  const auto second = name.find('/', first + 1);
  return name.substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1);
}

// The key a benchmark is matched by; `pair_used` is set to the index of the --pair that renamed it.
std::string match_key(const std::string& name, const Options& options, std::optional<std::size_t>* pair_used) {
  const auto first = name.find('/');
  if (first == std::string::npos) return name;
  const auto second = name.find('/', first + 1);
  const std::string rest = second == std::string::npos ? "" : name.substr(second);
  if (options.ignore_implementation) return name.substr(0, first) + "/*" + rest;
  const std::string impl = implementation_of(name);
  for (std::size_t p = 0; p < options.implementation_pairs.size(); ++p) {
    const auto& [theirs, ours] = options.implementation_pairs[p];
    if (impl != theirs) continue;
    if (pair_used) *pair_used = p;
    return name.substr(0, first + 1) + ours + rest;
  }
  return name;
}

std::optional<double> tau(const Cell& c) {
  if (!c.present || c.result->failed) return std::nullopt;
  return c.result->tflops;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Context keys whose difference can explain a difference in tau: the program and the libraries
// that do the work. (GPU name and host are expected to differ; that is what is compared.)
const std::vector<std::pair<const char*, const char*>>& version_keys() {
  static const std::vector<std::pair<const char*, const char*>> keys = {{"wflops_version", "wflops version"},
                                                                        {"wflops_commit", "wflops commit"},
                                                                        {"cuda_runtime", "CUDA runtime"},
                                                                        {"cublas", "cuBLAS"},
                                                                        {"cudnn", "cuDNN"},
                                                                        {"driver", "driver"}};
  return keys;
}

void add_context_warnings(const std::vector<ResultFile>& files, Report& report) {
  for (const auto& [key, what] : version_keys()) {
    std::vector<std::string> values;
    std::set<std::string> distinct;
    for (const auto& f : files) {
      std::string v = f.context_text(key);
      if (v.empty()) v = "?";
      values.push_back(v);
      distinct.insert(v);
    }
    if (distinct.size() > 1) {
      std::string list;
      for (std::size_t i = 0; i < values.size(); ++i) list += fmt::format("{}[{}] {}", i ? ", " : "", i + 1, values[i]);
      report.warnings.push_back(fmt::format("the files differ in {}: {}", what, list));
    }
  }
  std::set<std::string> sources;
  for (const auto& f : files) sources.insert(f.context_text("source"));
  if (sources.size() > 1) {
    report.warnings.push_back(
        "some files come from wflops and some from a PyTorch peer script: "
        "the same name measures a different implementation");
  }
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto& f = files[i];
    if (f.context.value("interrupted", false)) {
      report.warnings.push_back(
          fmt::format("[{}] {} was cut short (context.interrupted): it may lack benchmarks", i + 1, f.path));
    }
    std::size_t throttled = 0, failed = 0;
    for (const auto& b : f.benchmarks) {
      throttled += b.throttled ? 1 : 0;
      failed += b.failed ? 1 : 0;
    }
    if (throttled) {
      report.warnings.push_back(
          fmt::format("[{}] {}: {} benchmark(s) ran with the GPU throttled", i + 1, f.path, throttled));
    }
    if (failed) report.warnings.push_back(fmt::format("[{}] {}: {} benchmark(s) failed", i + 1, f.path, failed));
    if (f.benchmarks.empty()) {
      report.warnings.push_back(
          fmt::format("[{}] {} has no benchmarks (a run that ended before its first one "
                      "finished, or a filter that matched nothing)",
                      i + 1, f.path));
    }
  }
}

// pct_peak far over 100: the τ may be right, but the peak it was read against is not the GPU's
// peak for that dtype. One line per file, naming the benchmarks (the first few when many).
void add_pct_peak_warnings(const std::vector<ResultFile>& files, const Options& options, Report& report) {
  constexpr std::size_t kNamed = 3;
  for (std::size_t i = 0; i < files.size(); ++i) {
    std::vector<std::string> over;
    for (const auto& b : files[i].benchmarks) {
      if (b.failed || !b.pct_peak || *b.pct_peak <= options.max_plausible_pct_peak) continue;
      over.push_back(fmt::format("{} ({:.1f}%)", b.name, *b.pct_peak));
    }
    if (over.empty()) continue;
    std::string list;
    for (std::size_t k = 0; k < over.size() && k < kNamed; ++k) list += (k ? ", " : "") + over[k];
    if (over.size() > kNamed) list += fmt::format(" and {} more", over.size() - kNamed);
    report.warnings.push_back(fmt::format(
        "[{}] {}: {} benchmark(s) over {}% of the datasheet peak: {}; no GPU runs past its peak, so the peak "
        "they were computed against is wrong (another dtype's, or a --peak set too low); their TFLOP/s stand, "
        "their %peak does not",
        i + 1, files[i].path, over.size(), options.max_plausible_pct_peak, list));
  }
}

std::optional<double> clock_ratio(const Cell& c) {
  if (!c.present || c.result->failed) return std::nullopt;
  const auto it = c.result->counters.find("clock_ratio");
  if (it == c.result->counters.end()) return std::nullopt;
  return it->second;
}

// Per file rather than per benchmark: one line says the GPUs ran at different clocks, where a
// line per benchmark would repeat it. The medians are taken over the benchmarks both files
// measured the clock of, so a file with more memory-bound rows (which run at other clocks) is
// not read as a slower GPU.
void add_clock_warnings(const std::vector<ResultFile>& files, const Options& options, Report& report) {
  for (std::size_t i = 1; i < files.size(); ++i) {
    std::vector<double> first, other;
    for (const Row& row : report.rows) {
      const auto a = clock_ratio(row.cells[0]);
      const auto b = clock_ratio(row.cells[i]);
      if (!a || !b) continue;
      first.push_back(*a);
      other.push_back(*b);
    }
    if (first.empty()) continue;
    const double m1 = median_of(first), mi = median_of(other);
    if (!(m1 > 0) || std::abs(mi - m1) <= options.clock_ratio_pct / 100.0 * m1) continue;
    report.warnings.push_back(
        fmt::format("[{}] {} ran its SM clock at {:.3f} of the clock the peak assumes, [1] at {:.3f} (medians over {} "
                    "benchmark(s)): {:+.1f}%, more than {}%, so part of the difference in tau is the clock",
                    i + 1, files[i].path, mi, m1, first.size(), 100.0 * (mi / m1 - 1.0), options.clock_ratio_pct));
  }
}

// Cluster mode: every file from the same GPU model, enough of them for a median.
void add_standings(const std::vector<ResultFile>& files, const Options& options, Report& report) {
  std::set<std::string> gpus;
  for (const auto& f : files) gpus.insert(f.context_text("gpu_name"));
  if (files.size() < options.outlier_min_files || gpus.size() != 1) return;
  report.cluster = true;
  report.outlier_pct = options.outlier_pct;
  const double threshold = 1.0 - options.outlier_pct / 100.0;
  std::vector<double> log_sum(files.size(), 0.0);
  report.standings.resize(files.size());
  for (std::size_t i = 0; i < files.size(); ++i) report.standings[i].file = i;
  for (const Row& row : report.rows) {
    std::vector<double> taus;
    for (const Cell& c : row.cells) {
      if (auto t = tau(c); t && *t > 0) taus.push_back(*t);
    }
    // A median of two says nothing about which one is slow.
    if (taus.size() < options.outlier_min_files) continue;
    const double median = median_of(taus);
    for (std::size_t i = 0; i < files.size(); ++i) {
      const auto t = tau(row.cells[i]);
      if (!t || *t <= 0) continue;
      const double r = *t / median;
      log_sum[i] += std::log(r);
      auto& s = report.standings[i];
      ++s.benchmarks;
      if (r < threshold) ++s.below;
    }
  }
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto& s = report.standings[i];
    if (s.benchmarks == 0) continue;
    // The geometric mean: a GPU 10% slow on every benchmark is 0.9 whatever the benchmarks' sizes.
    s.ratio_to_median = std::exp(log_sum[i] / static_cast<double>(s.benchmarks));
    s.outlier = s.ratio_to_median < threshold;
  }
}

// A --pair that sets nothing side by side is a typo or a file that lacks the peer: say which.
void add_pair_warnings(const std::vector<ResultFile>& files, const Options& options,
                       const std::vector<std::size_t>& renamed, const std::vector<std::set<std::size_t>>& paired_rows,
                       Report& report) {
  for (std::size_t p = 0; p < options.implementation_pairs.size(); ++p) {
    const auto& [theirs, ours] = options.implementation_pairs[p];
    if (renamed[p] == 0) {
      std::set<std::string> impls;
      for (const auto& f : files) {
        for (const auto& b : f.benchmarks) impls.insert(implementation_of(b.name));
      }
      std::string list;
      for (const auto& w : impls) list += (list.empty() ? "" : ", ") + w;
      report.warnings.push_back(
          fmt::format("--pair {}={} pairs nothing: no file has a benchmark with the "
                      "implementation '{}' (the files have: {})",
                      theirs, ours, theirs, list.empty() ? "none" : list));
      continue;
    }
    std::size_t matched = 0;
    for (std::size_t r : paired_rows[p]) matched += report.rows[r].present_in >= 2 ? 1 : 0;
    if (matched == 0) {
      report.warnings.push_back(
          fmt::format("--pair {}={} pairs nothing: none of the {} benchmark(s) named '{}' "
                      "has a benchmark named '{}' of the same shape in another file",
                      theirs, ours, renamed[p], theirs, ours));
    }
  }
}

}  // namespace

void check_counters(const ResultFile& file) {
  for (const auto& b : file.benchmarks) {
    if (b.failed) continue;
    // A failed benchmark has error_occurred and no figures, so a figure here claims a measurement.
    const auto refuse = [&](const char* counter, double value, const char* why) {
      throw UserError(
          fmt::format("'{}': benchmark '{}' has {} = {} without an error: {}", file.path, b.name, counter, value, why));
    };
    if (b.tflops && !(*b.tflops > 0 && std::isfinite(*b.tflops))) {
      refuse("tflops", *b.tflops, "a measured FLOP/s is positive");
    }
    // 0 GB/s beside 0 bytes is a quantity not counted (files written before bytes were), not a
    // measurement; beside bytes that moved it cannot be.
    const bool bytes_counted = b.bytes && *b.bytes > 0;
    if (b.gbps && !(std::isfinite(*b.gbps) && (*b.gbps > 0 || (*b.gbps == 0 && !bytes_counted)))) {
      refuse("gbps", *b.gbps, "a measured bandwidth is positive");
    }
    if (b.pct_peak && !(*b.pct_peak >= 0 && std::isfinite(*b.pct_peak))) {
      refuse("pct_peak", *b.pct_peak, "a share of the peak is not negative");
    }
  }
}

Report compare_results(const std::vector<ResultFile>& files, const Options& options) {
  Report report;
  if (files.size() < 2) throw UserError("compare needs at least two result files");
  if (!(options.noise_sigmas >= 0) || !(options.outlier_pct > 0 && options.outlier_pct < 100) ||
      !(options.clock_ratio_pct >= 0)) {
    throw UserError(
        "the noise threshold must be >= 0, the outlier percentage between 0 and 100 and the clock "
        "ratio threshold >= 0");
  }
  if (!(options.max_plausible_pct_peak > 0)) throw UserError("the plausible pct_peak limit must be > 0");
  for (const auto& f : files) check_counters(f);
  std::map<std::string, std::size_t> row_of;
  // Per --pair: how many benchmarks it renamed, and the rows it renamed them into.
  std::vector<std::size_t> renamed(options.implementation_pairs.size(), 0);
  std::vector<std::set<std::size_t>> paired_rows(options.implementation_pairs.size());
  for (std::size_t i = 0; i < files.size(); ++i) {
    report.paths.push_back(files[i].path);
    report.labels.push_back(files[i].label());
    for (const auto& b : files[i].benchmarks) {
      std::optional<std::size_t> pair;
      const std::string key = match_key(b.name, options, &pair);
      auto [it, inserted] = row_of.emplace(key, report.rows.size());
      if (inserted) {
        Row row;
        row.key = key;
        row.cells.resize(files.size());
        report.rows.push_back(std::move(row));
      }
      if (pair) {
        ++renamed[*pair];
        paired_rows[*pair].insert(it->second);
      }
      Cell& cell = report.rows[it->second].cells[i];
      if (cell.present) {
        // Only possible when implementations are ignored or paired: two names for one benchmark.
        report.warnings.push_back(fmt::format("[{}] {}: '{}' and '{}' both match '{}'; using the first", i + 1,
                                              files[i].path, cell.result->name, b.name, key));
        continue;
      }
      cell.present = true;
      cell.result = &b;
    }
  }
  for (Row& row : report.rows) {
    const auto base = tau(row.cells[0]);
    row.ratio.resize(files.size());
    row.noise.resize(files.size(), Noise::unknown);
    for (std::size_t i = 0; i < files.size(); ++i) {
      if (row.cells[i].present) ++row.present_in;
      const auto t = tau(row.cells[i]);
      if (!base || !t || *base <= 0) continue;
      row.ratio[i] = *t / *base;
      if (i == 0) continue;
      const auto s0 = row.cells[0].result->tflops_stddev;
      const auto si = row.cells[i].result->tflops_stddev;
      if (s0 && si) {
        const double spread = options.noise_sigmas * std::sqrt(*s0 * *s0 + *si * *si);
        row.noise[i] = std::abs(*t - *base) > spread ? Noise::beyond : Noise::within;
      }
    }
  }
  add_context_warnings(files, report);
  add_pct_peak_warnings(files, options, report);
  add_pair_warnings(files, options, renamed, paired_rows, report);
  add_clock_warnings(files, options, report);
  add_standings(files, options, report);
  return report;
}

Format parse_format(const std::string& text) {
  if (text == "table") return Format::table;
  if (text == "markdown" || text == "md") return Format::markdown;
  if (text == "csv") return Format::csv;
  if (text == "json") return Format::json;
  throw UserError(fmt::format("unknown format '{}' (table, markdown, csv or json)", text));
}

namespace {

std::string number(std::optional<double> v, int decimals) {
  return v ? fmt::format("{:.{}f}", *v, decimals) : std::string("-");
}

// "1.23*" beyond noise, "1.23~" within noise, "1.23" when a file had no repetitions.
std::string ratio_text(const Row& row, std::size_t i) {
  if (!row.ratio[i]) return "-";
  const char* mark = row.noise[i] == Noise::beyond ? "*" : row.noise[i] == Noise::within ? "~" : "";
  return fmt::format("{:.3f}{}", *row.ratio[i], mark);
}

std::string tau_text(const Cell& c) {
  if (!c.present) return "absent";
  if (c.result->failed) return "FAILED";
  return number(c.result->tflops, 1);
}

std::vector<std::string> header(const Report& r) {
  std::vector<std::string> h = {"benchmark"};
  for (std::size_t i = 0; i < r.paths.size(); ++i) {
    h.push_back(fmt::format("[{}] TFLOP/s", i + 1));
    h.push_back(fmt::format("[{}] %peak", i + 1));
    if (i > 0) h.push_back(fmt::format("[{}]/[1]", i + 1));
  }
  return h;
}

std::vector<std::string> cells_of(const Report& r, const Row& row) {
  std::vector<std::string> out = {row.key};
  for (std::size_t i = 0; i < r.paths.size(); ++i) {
    const Cell& c = row.cells[i];
    out.push_back(tau_text(c));
    out.push_back(c.present && !c.result->failed ? number(c.result->pct_peak, 1) : "-");
    if (i > 0) out.push_back(ratio_text(row, i));
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

std::string render_csv(const Report& r) {
  // Machine-readable: plain numbers, empty when absent, the noise verdict in its own column.
  std::string out = "benchmark";
  for (std::size_t i = 0; i < r.paths.size(); ++i) {
    out += fmt::format(",tflops_{0},pct_peak_{0},stddev_{0}", i + 1);
    if (i > 0) out += fmt::format(",ratio_{0},beyond_noise_{0}", i + 1);
  }
  out += "\n";
  auto num = [](std::optional<double> v) { return v ? fmt::format("{}", *v) : std::string(); };
  for (const Row& row : r.rows) {
    out += csv_field(row.key);
    for (std::size_t i = 0; i < r.paths.size(); ++i) {
      const Cell& c = row.cells[i];
      const bool ok = c.present && !c.result->failed;
      out += "," + (ok ? num(c.result->tflops) : std::string());
      out += "," + (ok ? num(c.result->pct_peak) : std::string());
      out += "," + (ok ? num(c.result->tflops_stddev) : std::string());
      if (i > 0) {
        out += "," + num(row.ratio[i]);
        out += std::string(",") + (row.noise[i] == Noise::beyond ? "1" : row.noise[i] == Noise::within ? "0" : "");
      }
    }
    out += "\n";
  }
  return out;
}

std::string render_text(const Report& r, bool markdown) {
  std::string out;
  const auto head = header(r);
  std::vector<std::vector<std::string>> body;
  for (const Row& row : r.rows) body.push_back(cells_of(r, row));

  if (markdown) {
    out += "Files:\n\n";
    for (std::size_t i = 0; i < r.paths.size(); ++i) {
      out += fmt::format("{}. `{}`: {}\n", i + 1, r.paths[i], r.labels[i]);
    }
    out += "\n|";
    for (const auto& h : head) out += " " + h + " |";
    out += "\n|";
    for (std::size_t c = 0; c < head.size(); ++c) out += c == 0 ? "---|" : "---:|";
    out += "\n";
    for (const auto& line : body) {
      out += "|";
      for (const auto& cell : line) out += " " + cell + " |";
      out += "\n";
    }
  } else {
    for (std::size_t i = 0; i < r.paths.size(); ++i) {
      out += fmt::format("[{}] {}: {}\n", i + 1, r.paths[i], r.labels[i]);
    }
    out += "\n";
    std::vector<std::size_t> width(head.size());
    for (std::size_t c = 0; c < head.size(); ++c) width[c] = head[c].size();
    for (const auto& line : body) {
      for (std::size_t c = 0; c < line.size(); ++c) width[c] = std::max(width[c], line[c].size());
    }
    auto print_line = [&](const std::vector<std::string>& line) {
      for (std::size_t c = 0; c < line.size(); ++c) {
        out += c == 0 ? fmt::format("{:<{}}", line[c], width[c]) : fmt::format("  {:>{}}", line[c], width[c]);
      }
      out += "\n";
    };
    print_line(head);
    for (const auto& line : body) print_line(line);
  }
  out +=
      "\nratio: tau against file [1]; '*' beyond the repetitions' noise, '~' within it, "
      "no mark: no repetitions to tell.\n";

  std::vector<const Row*> partial;
  for (const Row& row : r.rows) {
    if (row.present_in < r.paths.size()) partial.push_back(&row);
  }
  if (!partial.empty()) {
    out += fmt::format("\nIn only some of the files ({}):\n", partial.size());
    for (const Row* row : partial) {
      std::string in;
      for (std::size_t i = 0; i < r.paths.size(); ++i) {
        if (row->cells[i].present) in += fmt::format("{}[{}]", in.empty() ? "" : " ", i + 1);
      }
      out += fmt::format("{}  {} (in {})\n", markdown ? "-" : " ", row->key, in);
    }
  }
  if (r.cluster) {
    out += fmt::format(
        "\nCluster: tau against the median of all {} files (geometric mean over shared "
        "benchmarks); outliers are more than {}% below it:\n",
        r.paths.size(), r.outlier_pct);
    std::size_t outliers = 0;
    for (const auto& s : r.standings) {
      outliers += s.outlier ? 1 : 0;
      out += fmt::format("{}  [{}] {}: {:.3f} of the median over {} benchmarks, {} more than {}% below{}\n",
                         markdown ? "-" : " ", s.file + 1, r.labels[s.file], s.ratio_to_median, s.benchmarks, s.below,
                         r.outlier_pct, s.outlier ? "  <-- OUTLIER" : "");
    }
    out += outliers ? fmt::format("{} outlier GPU(s).\n", outliers) : std::string("No outlier GPUs.\n");
  }
  // On a terminal the program writes the warnings to stderr; a Markdown document keeps them too.
  if (markdown && !r.warnings.empty()) {
    out += "\nWarnings:\n\n";
    for (const auto& w : r.warnings) out += fmt::format("- {}\n", w);
  }
  return out;
}

}  // namespace

nlohmann::json to_json(const Report& r) {
  nlohmann::json doc;
  doc["files"] = nlohmann::json::array();
  for (std::size_t i = 0; i < r.paths.size(); ++i) {
    doc["files"].push_back({{"path", r.paths[i]}, {"label", r.labels[i]}});
  }
  doc["benchmarks"] = nlohmann::json::array();
  doc["only_in_some"] = nlohmann::json::array();
  for (const Row& row : r.rows) {
    nlohmann::json b;
    b["name"] = row.key;
    b["results"] = nlohmann::json::array();
    b["ratio"] = nlohmann::json::array();
    b["beyond_noise"] = nlohmann::json::array();
    for (std::size_t i = 0; i < r.paths.size(); ++i) {
      const Cell& c = row.cells[i];
      if (!c.present) {
        b["results"].push_back(nullptr);
      } else {
        const auto& res = *c.result;
        b["results"].push_back({{"name", res.name},
                                {"failed", res.failed},
                                {"tflops", json_value(res.tflops)},
                                {"pct_peak", json_value(res.pct_peak)},
                                {"tflops_stddev", json_value(res.tflops_stddev)},
                                {"clock_ratio", json_value(clock_ratio(c))},
                                {"repetitions", res.repetitions}});
      }
      b["ratio"].push_back(json_value(row.ratio[i]));
      b["beyond_noise"].push_back(row.noise[i] == Noise::unknown ? nlohmann::json(nullptr)
                                                                 : nlohmann::json(row.noise[i] == Noise::beyond));
    }
    if (row.present_in < r.paths.size()) {
      nlohmann::json in = nlohmann::json::array();
      for (std::size_t i = 0; i < r.paths.size(); ++i) {
        if (row.cells[i].present) in.push_back(i + 1);
      }
      doc["only_in_some"].push_back({{"name", row.key}, {"files", in}});
    }
    doc["benchmarks"].push_back(std::move(b));
  }
  doc["warnings"] = r.warnings;
  if (r.cluster) {
    nlohmann::json c;
    c["outlier_pct"] = r.outlier_pct;
    c["files"] = nlohmann::json::array();
    for (const auto& s : r.standings) {
      c["files"].push_back({{"file", s.file + 1},
                            {"path", r.paths[s.file]},
                            {"ratio_to_median", s.ratio_to_median},
                            {"benchmarks", s.benchmarks},
                            {"below", s.below},
                            {"outlier", s.outlier}});
    }
    doc["cluster"] = std::move(c);
  } else {
    doc["cluster"] = nullptr;
  }
  return doc;
}

std::string render(const Report& report, Format format) {
  switch (format) {
    case Format::table: return render_text(report, false);
    case Format::markdown: return render_text(report, true);
    case Format::csv: return render_csv(report);
    case Format::json: return to_json(report).dump(2) + "\n";
  }
  return {};
}

}  // namespace wflops::compare
