#include "results/result_reader.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "errors.hpp"

namespace wflops {

namespace {

using nlohmann::json;

[[noreturn]] void not_a_result(const std::string& path, const std::string& why) {
  throw UserError(fmt::format("'{}' is not a wflops result file: {}", path, why));
}

const char* type_name(const json& v) { return v.type_name(); }

// Google Benchmark's own per-run fields: numbers, but not counters.
bool is_gbench_field(const std::string& key) {
  static const std::set<std::string> fields = {"family_index", "per_family_instance_index",
                                               "repetitions",  "repetition_index",
                                               "threads",      "iterations",
                                               "real_time",    "cpu_time"};
  return fields.count(key) > 0;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Sample standard deviation (n - 1), as Google Benchmark's stddev aggregate computes it.
double sample_stddev(const std::vector<double>& v) {
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return std::sqrt(ss / static_cast<double>(v.size() - 1));
}

// Google Benchmark appends its own parts to a run name: "/repeats:n" for ->Repetitions(n) and
// "/manual_time" or "/real_time" for the timing mode (the reporter drops the latter, files written
// before it did still carry it). The same benchmark measured either way is still the same one.
std::string strip_runner_suffixes(std::string name) {
  for (bool changed = true; changed;) {
    changed = false;
    for (const char* suffix : {"/manual_time", "/real_time"}) {
      const std::string s = suffix;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
        name.erase(name.size() - s.size());
        changed = true;
      }
    }
    const auto pos = name.rfind("/repeats:");
    if (pos != std::string::npos && name.find('/', pos + 1) == std::string::npos) {
      name.erase(pos);
      changed = true;
    }
  }
  return name;
}

void check_context(const json& context, const std::string& path) {
  if (!context.contains("source")) {
    not_a_result(path,
                 "its context has no 'source' key (a plain Google Benchmark file? wflops "
                 "writes \"source\": \"wflops\")");
  }
  const json& source = context["source"];
  if (!source.is_string() || (source != "wflops" && source != "pytorch")) {
    not_a_result(path, fmt::format("context 'source' is {}, expected \"wflops\" or \"pytorch\"", source.dump()));
  }
  if (!context.contains("gpu_name") || !context["gpu_name"].is_string()) {
    not_a_result(path, "context 'gpu_name' is missing or not a string");
  }
  if (source == "wflops" && (!context.contains("wflops_version") || !context["wflops_version"].is_string())) {
    not_a_result(path, "context 'wflops_version' is missing or not a string");
  }
  // The peaks are what pct_peak was computed against; a wrong type would mislead every reader.
  for (auto it = context.begin(); it != context.end(); ++it) {
    const std::string& key = it.key();
    const bool numeric =
        key.rfind("peak_tflops_", 0) == 0 || key == "peak_gbps" || key == "sm_count" || key == "gpu_index";
    if (numeric && !it.value().is_number() && !it.value().is_null()) {
      not_a_result(path, fmt::format("context '{}' is a {}, expected a number or null", key, type_name(it.value())));
    }
  }
}

struct Group {
  std::vector<const json*> iterations;
  std::map<std::string, const json*> aggregates;  // "median" -> entry
  const json* error = nullptr;
};

std::optional<double> number_field(const json& entry, const char* key) {
  auto it = entry.find(key);
  if (it == entry.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

BenchmarkResult fold(const std::string& name, const Group& g) {
  BenchmarkResult r;
  r.name = name;
  if (g.error) {
    r.failed = true;
    r.error_message = g.error->value("error_message", std::string("(no message)"));
  }
  for (const json* it : g.iterations) {
    if (auto t = number_field(*it, "tflops")) r.repetition_tflops.push_back(*t);
    if (number_field(*it, "throttled").value_or(0) > 0) r.throttled = true;
  }
  if (!g.iterations.empty()) {
    r.repetitions = std::max<int>(static_cast<int>(g.iterations.size()), g.iterations.front()->value("repetitions", 1));
  } else if (!g.aggregates.empty()) {
    // Written with aggregates only (--benchmark_report_aggregates_only): they carry the count.
    r.repetitions = g.aggregates.begin()->second->value("repetitions", 1);
  }
  // The representative counters: the median aggregate, the only run, or the median over runs.
  auto median_agg = g.aggregates.find("median");
  if (median_agg != g.aggregates.end()) {
    for (auto it = median_agg->second->begin(); it != median_agg->second->end(); ++it) {
      if (it.value().is_number() && !is_gbench_field(it.key())) r.counters[it.key()] = it.value().get<double>();
    }
  } else if (!g.iterations.empty()) {
    std::map<std::string, std::vector<double>> values;
    for (const json* entry : g.iterations) {
      for (auto it = entry->begin(); it != entry->end(); ++it) {
        if (it.value().is_number() && !is_gbench_field(it.key())) values[it.key()].push_back(it.value().get<double>());
      }
    }
    for (auto& [key, v] : values) r.counters[key] = median_of(v);
  }
  auto counter = [&r](const char* key) -> std::optional<double> {
    auto it = r.counters.find(key);
    return it == r.counters.end() ? std::nullopt : std::optional<double>(it->second);
  };
  if (!r.failed) {
    r.tflops = counter("tflops");
    r.pct_peak = counter("pct_peak");
    r.gbps = counter("gbps");
    r.flops = counter("flops");
    r.bytes = counter("bytes");
  }
  auto stddev_agg = g.aggregates.find("stddev");
  if (stddev_agg != g.aggregates.end()) {
    r.tflops_stddev = number_field(*stddev_agg->second, "tflops");
  } else if (r.repetition_tflops.size() >= 2) {
    r.tflops_stddev = sample_stddev(r.repetition_tflops);
  }
  return r;
}

}  // namespace

std::string ResultFile::context_text(const std::string& key) const {
  auto it = context.find(key);
  if (it == context.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

std::optional<double> ResultFile::context_number(const std::string& key) const {
  auto it = context.find(key);
  if (it == context.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

std::string ResultFile::label() const {
  std::string host = context_text("host");
  if (host.empty()) host = context_text("host_name");
  std::string where = host;
  const std::string index = context_text("gpu_index");
  if (!index.empty()) where += (where.empty() ? "#" : " #") + index;
  const std::string gpu = context_text("gpu_name");
  return where.empty() ? gpu : fmt::format("{} ({})", gpu, where);
}

const BenchmarkResult* ResultFile::find(const std::string& name) const {
  for (const auto& b : benchmarks) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

ResultFile parse_result_text(const std::string& text, const std::string& path) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    // A syntax error (parse_error) or a number no double holds, such as 1e400 (out_of_range.406).
    // e.what() starts with "[json.exception.parse_error.101] "; the rest says where and why.
    std::string what = e.what();
    const auto bracket = what.find("] ");
    if (bracket != std::string::npos) what = what.substr(bracket + 2);
    throw UserError(fmt::format("'{}' is not valid JSON: {}", path, what));
  }
  if (!doc.is_object()) not_a_result(path, fmt::format("the top level is a JSON {}, not an object", type_name(doc)));
  if (!doc.contains("context") || !doc["context"].is_object()) not_a_result(path, "it has no 'context' object");
  if (!doc.contains("benchmarks") || !doc["benchmarks"].is_array()) not_a_result(path, "it has no 'benchmarks' array");
  check_context(doc["context"], path);

  ResultFile file;
  file.path = path;
  file.context = doc["context"];
  std::vector<std::string> order;
  std::map<std::string, Group> groups;
  const json& list = doc["benchmarks"];
  for (std::size_t i = 0; i < list.size(); ++i) {
    const json& entry = list[i];
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string()) {
      not_a_result(path, fmt::format("benchmarks[{}] is not an object with a string 'name'", i));
    }
    for (const char* key : {"tflops", "pct_peak", "flops", "bytes", "gbps"}) {
      if (entry.contains(key) && !entry[key].is_number()) {
        not_a_result(path, fmt::format("benchmarks[{}] ('{}'): counter '{}' is a {}, expected a number", i,
                                       entry["name"].get<std::string>(), key, type_name(entry[key])));
      }
    }
    const std::string run_name = strip_runner_suffixes(entry.value("run_name", entry["name"].get<std::string>()));
    if (!groups.count(run_name)) order.push_back(run_name);
    Group& g = groups[run_name];
    if (entry.value("error_occurred", false)) {
      g.error = &entry;
    } else if (entry.value("run_type", std::string("iteration")) == "aggregate") {
      g.aggregates[entry.value("aggregate_name", std::string())] = &entry;
    } else {
      g.iterations.push_back(&entry);
    }
  }
  for (const auto& name : order) file.benchmarks.push_back(fold(name, groups[name]));
  return file;
}

ResultFile read_result_file(const std::filesystem::path& path) {
  std::error_code dir_ec;
  if (std::filesystem::is_directory(path, dir_ec)) {
    throw UserError(fmt::format("'{}' is a directory, not a result file", path.string()));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    const bool exists = std::filesystem::exists(path, ec);
    throw UserError(fmt::format("cannot read '{}': {}", path.string(),
                                exists ? "permission denied or not a file" : "no such file"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_result_text(text.str(), path.string());
}

std::optional<std::string> BenchmarkName::param(const std::string& key) const {
  for (const auto& [k, v] : params) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::optional<double> BenchmarkName::number(const std::string& key) const {
  const auto text = param(key);
  if (!text || text->empty()) return std::nullopt;
  try {
    std::size_t used = 0;
    const double v = std::stod(*text, &used);
    if (used != text->size()) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

BenchmarkName parse_benchmark_name(const std::string& name) {
  BenchmarkName out;
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const auto slash = name.find('/', start);
    parts.push_back(name.substr(start, slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  // The first three parts without a ':' are family, implementation and dtype; the rest key:value.
  std::size_t i = 0;
  std::string* fixed[] = {&out.family, &out.implementation, &out.dtype};
  for (std::string* field : fixed) {
    if (i < parts.size() && parts[i].find(':') == std::string::npos) *field = parts[i++];
  }
  for (; i < parts.size(); ++i) {
    const auto colon = parts[i].find(':');
    if (colon == std::string::npos) {
      out.params.emplace_back(parts[i], "");
    } else {
      out.params.emplace_back(parts[i].substr(0, colon), parts[i].substr(colon + 1));
    }
  }
  return out;
}

}  // namespace wflops

namespace wflops {

double measured_tflops(const ResultFile& file, const std::string& name) {
  const BenchmarkResult* b = file.find(name);
  if (!b) {
    // Suggest names of the same family: the usual mistake is a wrong size or dtype.
    const std::string family = parse_benchmark_name(name).family;
    std::string similar;
    int shown = 0;
    for (const auto& other : file.benchmarks) {
      if (parse_benchmark_name(other.name).family == family && shown < 5) {
        similar += "\n  " + other.name;
        ++shown;
      }
    }
    throw UserError(fmt::format("'{}' has no benchmark named '{}'{}", file.path, name,
                                similar.empty() ? "" : "; benchmarks of that family:" + similar));
  }
  if (b->failed) throw UserError(fmt::format("'{}': benchmark '{}' failed: {}", file.path, name, b->error_message));
  if (!b->tflops || !(*b->tflops > 0)) {
    throw UserError(fmt::format("'{}': benchmark '{}' has no positive 'tflops' counter", file.path, name));
  }
  return *b->tflops;
}

}  // namespace wflops
