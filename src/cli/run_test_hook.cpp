// TEST ONLY (see run_test_hook.hpp): the fake benchmarks of WFLOPS_TEST_FAKE_RUN.
#include "cli/run_test_hook.hpp"

#include <fmt/core.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "errors.hpp"

namespace wflops::cli {

namespace {

bool g_sticky = false;  // a "sticky" fake benchmark ran in this process

int parse_index(const std::string& item, const std::string& value) {
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || v < 0 || v > 100000) {
    throw UserError(fmt::format("WFLOPS_TEST_FAKE_RUN '{}': '{}' is not a benchmark index", item, value));
  }
  return static_cast<int>(v);
}

// A crash of the test hook must not leave a core file in the test's working directory.
void no_core_file() {
  const rlimit none{0, 0};
  setrlimit(RLIMIT_CORE, &none);
}

void segv_at_exit() {
  no_core_file();
  std::raise(SIGSEGV);
}

void fake_body(benchmark::State& state, int index, const std::string& fault) {
  if (fault == "exitsegv") {
    static const bool registered = std::atexit(segv_at_exit) == 0;
    (void)registered;
  }
  if (fault == "segv") {
    no_core_file();
    std::raise(SIGSEGV);
  } else if (fault == "abort") {
    no_core_file();
    std::abort();
  } else if (fault == "term") {
    kill(getppid(), SIGTERM);
    // The parent forwards the signal to this process, which then ends; the wait is bounded so that
    // a parent that fails to forward it fails the test rather than hanging it.
    std::this_thread::sleep_for(std::chrono::seconds(20));
    state.SkipWithError("the parent did not stop this benchmark within 20 s of its SIGTERM");
    return;
  } else if (fault == "sticky") {
    g_sticky = true;
    state.SkipWithError("cudaErrorIllegalAddress: an illegal memory access was encountered (fake, test hook)");
    return;
  }
  for (auto _ : state) state.SetIterationTime(1e-3 * (1 + index));
  state.counters["flops"] = 1e9;
  state.counters["tflops"] = 1e9 / (1e-3 * (1 + index)) / 1e12;
}

}  // namespace

std::optional<FakeRun> fake_run_from_env() {
  const char* value = std::getenv("WFLOPS_TEST_FAKE_RUN");
  if (!value) return std::nullopt;
  FakeRun run;
  std::stringstream items(value);
  std::string item;
  while (std::getline(items, item, ',')) {
    const auto eq = item.find('=');
    const std::string key = item.substr(0, eq);
    const std::string v = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (key == "count") {
      run.count = parse_index(item, v);
    } else if (key == "segv" || key == "abort" || key == "sticky" || key == "exitsegv" || key == "term") {
      run.faults[parse_index(item, v)] = key;
    } else {
      throw UserError(fmt::format("WFLOPS_TEST_FAKE_RUN: unknown item '{}'", item));
    }
  }
  return run;
}

std::vector<BenchSpec> fake_benchmarks(const FakeRun& run) {
  std::vector<BenchSpec> specs;
  for (int i = 0; i < run.count; ++i) {
    BenchSpec s("fake", "cpu", DType::fp32, fmt::format("i:{}", i));
    s.flops = 1e9;
    specs.push_back(std::move(s));
  }
  return specs;
}

void run_fake_benchmark(benchmark::State& state, const FakeRun& run, const BenchSpec& spec) {
  const int index = std::stoi(spec.shape.substr(spec.shape.find(':') + 1));  // "i:<index>"
  const auto it = run.faults.find(index);
  fake_body(state, index, it == run.faults.end() ? "" : it->second);
}

DeviceDescription fake_device() {
  DeviceDescription d;
  d.name = "wflops test hook (no GPU)";
  d.sm_count = 132;
  d.cc_major = 9;
  return d;
}

Peaks fake_peaks() { return *peaks_by_slug("h100-sxm"); }

std::string fake_context_lost() {
  return g_sticky ? "cudaErrorIllegalAddress: an illegal memory access was encountered (fake, test hook)" : "";
}

}  // namespace wflops::cli
