// `wflops run`'s arguments, checked before anything looks for a GPU: bad input is exit code 1 and
// one line naming the flag on every machine, and only a good command line meets "no usable GPU".
#include <benchmark/benchmark.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <regex>
#include <sstream>

#include "cli/run_options.hpp"
#include "errors.hpp"
#include "model/peaks.hpp"
#include "run_progress.hpp"

namespace wflops::cli {

namespace {

namespace fs = std::filesystem;

bool flag_given(const std::vector<std::string>& flags, const std::string& name) {
  const std::string bare = "--benchmark_" + name;
  for (const std::string& f : flags) {
    if (f == bare || f.rfind(bare + "=", 0) == 0) return true;
  }
  return false;
}

// Google Benchmark 1.7's flag parser prints its usage and exits with code 0 on some bad values
// (ParseCommandLineFlags: a --benchmark_format or --benchmark_out_format other than console, json
// or csv, an empty --benchmark_color; SetDefaultTimeUnitFromFlag: a --benchmark_time_unit other
// than ns, us, ms or s), so those are checked here first.
void check_exiting_flags(const std::vector<std::string>& flags) {
  for (const char* name : {"format", "out_format"}) {
    const auto v = last_flag(flags, name);
    if (v && *v != "console" && *v != "json" && *v != "csv") {
      throw UserError(fmt::format("--benchmark_{}={}: expected console, json or csv", name, *v));
    }
  }
  if (const auto v = last_flag(flags, "color"); v && v->empty()) {
    throw UserError("--benchmark_color=: expected auto, true or false");
  }
  if (const auto v = last_flag(flags, "time_unit"); v && *v != "ns" && *v != "us" && *v != "ms" && *v != "s") {
    throw UserError(fmt::format("--benchmark_time_unit={}: expected ns, us, ms or s", *v));
  }
}

// Runs Google Benchmark's own flag parser over the flags; what it does not take is an error.
// Its complaints about a value (printed to std::cerr) become part of the one error line.
void check_benchmark_flags(const RunOptions& o) {
  for (const std::string& f : o.benchmark_flags) {
    if (f.rfind("--benchmark_", 0) != 0) {
      throw UserError(fmt::format("unknown argument '{}' for run (Google Benchmark flags start with --benchmark_)", f));
    }
  }
  // A run goes on in a fresh process after a fault, and each process would truncate the file of
  // --benchmark_out anew; wflops writes every result to its own result file instead.
  if (flag_given(o.benchmark_flags, "out")) {
    throw UserError("--benchmark_out: wflops writes its own result file (use --out FILE or --results-dir DIR)");
  }
  if (flag_given(o.benchmark_flags, "list_tests")) {
    throw UserError("--benchmark_list_tests: use `wflops list` to see the benchmarks of a suite");
  }
  check_exiting_flags(o.benchmark_flags);

  std::vector<std::string> args = benchmark_arguments(o);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  int argc = static_cast<int>(argv.size());
  std::ostringstream complaints;
  std::streambuf* const cerr_buffer = std::cerr.rdbuf(complaints.rdbuf());
  benchmark::Initialize(&argc, argv.data());
  std::cerr.rdbuf(cerr_buffer);
  if (argc > 1) {
    std::string why = complaints.str();
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    for (char& c : why) {
      if (c == '\n') c = ' ';
    }
    throw UserError(why.empty() ? fmt::format("{}: not a Google Benchmark flag (or not a valid value for it)", argv[1])
                                : fmt::format("{}: {}", argv[1], why));
  }

  // Google Benchmark matches --benchmark_filter as a POSIX extended regular expression (its re.h:
  // std::regex with the extended grammar, or regcomp with REG_EXTENDED); a leading '-' negates it.
  if (const auto filter = last_flag(o.benchmark_flags, "filter")) {
    const std::string re = !filter->empty() && (*filter)[0] == '-' ? filter->substr(1) : *filter;
    try {
      std::regex compiled(re, std::regex::extended);
      (void)compiled;
    } catch (const std::regex_error& e) {
      throw UserError(fmt::format("--benchmark_filter='{}': not a regular expression ({})", *filter, e.what()));
    }
  }
}

// A directory the run will write into: it must be a writable directory, or one that can be made
// under the nearest folder that exists. Nothing is created here (without a GPU, nothing is written).
void check_writable_directory(const fs::path& dir, const std::string& flag, const std::string& given) {
  fs::path p = dir.empty() ? fs::path(".") : dir;
  std::error_code ec;
  fs::path existing = p;
  while (!fs::exists(existing, ec)) {
    if (!existing.has_parent_path() || existing.parent_path() == existing) {
      existing = fs::path(".");
      break;
    }
    existing = existing.parent_path();
  }
  if (!fs::is_directory(existing, ec)) {
    throw UserError(fmt::format("{} '{}': '{}' is not a directory", flag, given, existing.string()));
  }
  if (::access(existing.c_str(), W_OK | X_OK) != 0) {
    throw UserError(fmt::format("{} '{}': {} '{}' ({})", flag, given,
                                existing == p ? "cannot write into" : "cannot create a directory in", existing.string(),
                                std::strerror(errno)));
  }
}

}  // namespace

std::vector<std::string> benchmark_arguments(const RunOptions& o) {
  std::vector<std::string> args = {"wflops"};
  if (o.suite == "quick" || o.suite == "seed") {
    args.insert(args.end(), {"--benchmark_repetitions=3", "--benchmark_min_time=0.2"});
  } else {
    args.insert(args.end(), {"--benchmark_repetitions=5", "--benchmark_min_time=0.5"});
  }
  args.insert(args.end(), o.benchmark_flags.begin(), o.benchmark_flags.end());
  return args;
}

void check_run_arguments(const RunOptions& o, const std::set<std::string>& suites, const std::string& suite_list) {
  if (!suites.count(o.suite)) {
    throw UserError(fmt::format("unknown suite '{}' (suites: {})", o.suite, suite_list));
  }
  if (o.device < 0) {
    throw UserError(fmt::format("--device {}: a CUDA device index is 0 or more", o.device));
  }
  // The same parser that applies them later, on a scratch table: a bad override fails here.
  Peaks scratch;
  apply_peak_overrides(scratch, o.peaks);
  if (!o.out.empty()) {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(o.out, ec))) {
      throw UserError(
          fmt::format("--out '{}' exists already; wflops never overwrites a result file "
                      "(choose another --out or remove it)",
                      o.out));
    }
    check_writable_directory(fs::path(o.out).parent_path(), "--out", o.out);
  } else {
    std::error_code ec;
    if (fs::exists(o.results_dir, ec) && !fs::is_directory(o.results_dir, ec)) {
      throw UserError(fmt::format("--results-dir '{}' is not a directory", o.results_dir));
    }
    check_writable_directory(o.results_dir, "--results-dir", o.results_dir);
  }
  check_benchmark_flags(o);
}

}  // namespace wflops::cli
