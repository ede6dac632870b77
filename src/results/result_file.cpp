#include "results/result_file.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "errors.hpp"

namespace wflops {

std::string result_file_name(std::string_view gpu_slug, const std::tm& t) {
  return fmt::format("{}-{:04d}{:02d}{:02d}-{:02d}{:02d}{:02d}.json", gpu_slug, t.tm_year + 1900, t.tm_mon + 1,
                     t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec);
}

namespace {
// O_EXCL makes "does it exist?" and "create it" one step, so two runs started in the same second
// (one per GPU of a node) cannot both take the same name.
bool create_exclusive(const std::filesystem::path& path, int& error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) {
    error = errno;
    return false;
  }
  ::close(fd);
  return true;
}
}  // namespace

std::filesystem::path create_result_file(const std::filesystem::path& dir, std::string_view gpu_slug,
                                         const std::tm& local_time) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw UserError(fmt::format("cannot create results directory '{}': {}", dir.string(), ec.message()));
  const std::string name = result_file_name(gpu_slug, local_time);
  const std::string stem = name.substr(0, name.size() - 5);  // without ".json"
  for (int i = 1; i < 1000; ++i) {
    const auto path = dir / (i == 1 ? name : fmt::format("{}-{}.json", stem, i));
    int error = 0;
    if (create_exclusive(path, error)) return path;
    if (error != EEXIST) {
      throw UserError(fmt::format("cannot create result file '{}': {}", path.string(), std::strerror(error)));
    }
  }
  throw UserError(fmt::format("cannot find a free result file name for '{}' in '{}'", name, dir.string()));
}

void create_result_file_at(const std::filesystem::path& path) {
  if (path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
  }
  int error = 0;
  if (create_exclusive(path, error)) return;
  if (error == EEXIST) {
    throw UserError(
        fmt::format("'{}' exists already; wflops never overwrites a result file "
                    "(choose another --out or remove it)",
                    path.string()));
  }
  throw UserError(fmt::format("cannot create result file '{}': {}", path.string(), std::strerror(error)));
}

void write_file_atomically(const std::filesystem::path& path, const std::string& content) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.flush();
    if (!out) throw std::runtime_error(fmt::format("cannot write '{}'", tmp.string()));
  }
  std::filesystem::rename(tmp, path);
}

nlohmann::json read_result_document(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(fmt::format("cannot read result file '{}'", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw UserError(fmt::format("result file '{}' is not JSON: {}", path.string(), e.what()));
  }
}

void write_result_document(const std::filesystem::path& path, const nlohmann::json& doc) {
  write_file_atomically(path, doc.dump(2) + "\n");
}

namespace {
std::string run_name_of(const nlohmann::json& entry) {
  if (entry.contains("run_name") && entry["run_name"].is_string()) return entry["run_name"].get<std::string>();
  return entry.value("name", "");
}
}  // namespace

std::set<std::string> benchmark_run_names(const nlohmann::json& doc) {
  std::set<std::string> names;
  if (!doc.contains("benchmarks") || !doc["benchmarks"].is_array()) return names;
  for (const auto& entry : doc["benchmarks"]) names.insert(run_name_of(entry));
  return names;
}

void record_benchmark_error(nlohmann::json& doc, const std::string& run_name, const std::string& message) {
  nlohmann::json kept = nlohmann::json::array();
  if (doc.contains("benchmarks") && doc["benchmarks"].is_array()) {
    for (const auto& entry : doc["benchmarks"]) {
      if (run_name_of(entry) != run_name) kept.push_back(entry);
    }
  }
  // The fields Google Benchmark's JSONReporter writes for a run that failed (its PrintRunData),
  // less the family indices, which only the process that registered the benchmark knows.
  kept.push_back({{"name", run_name},
                  {"run_name", run_name},
                  {"run_type", "iteration"},
                  {"repetitions", 1},
                  {"repetition_index", 0},
                  {"threads", 1},
                  {"error_occurred", true},
                  {"error_message", message},
                  {"iterations", 0},
                  {"real_time", 0.0},
                  {"cpu_time", 0.0},
                  {"time_unit", "ms"}});
  doc["benchmarks"] = std::move(kept);
}

}  // namespace wflops
