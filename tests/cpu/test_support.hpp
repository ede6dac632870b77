// What several CPU tests share: a fresh temporary folder, a result file read back as JSON, the
// test-only hook WFLOPS_TEST_FAKE_RUN (src/cli/run_test_hook.hpp) set for the programs a test
// starts, and a Google Benchmark run as the reporter receives it.
#pragma once
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace wflops::testing {

// An empty folder of its own under the temporary directory, named after the test and the process.
inline std::filesystem::path fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("wflops-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);  // throws (and fails the test) unless the file is valid JSON
}

// Sets WFLOPS_TEST_FAKE_RUN for the programs this test starts (each test is its own process).
class FakeRun {
 public:
  explicit FakeRun(const std::string& value) { setenv("WFLOPS_TEST_FAKE_RUN", value.c_str(), 1); }
  ~FakeRun() { unsetenv("WFLOPS_TEST_FAKE_RUN"); }
  FakeRun(const FakeRun&) = delete;
  FakeRun& operator=(const FakeRun&) = delete;
};

// One repetition of one benchmark, `iterations` long and `seconds` in all (CPU time the same),
// at `tflops`; the caller adds the repetitions and counters its test is about.
inline benchmark::BenchmarkReporter::Run timed_run(const std::string& name, double tflops, std::int64_t iterations,
                                                   double seconds) {
  benchmark::BenchmarkReporter::Run r;
  r.run_name.function_name = name;
  r.family_index = 0;
  r.per_family_instance_index = 0;
  r.iterations = iterations;
  r.repetitions = 1;
  r.repetition_index = 0;
  r.time_unit = benchmark::kMillisecond;
  r.real_accumulated_time = seconds;
  r.cpu_accumulated_time = seconds;
  r.counters["tflops"] = tflops;
  return r;
}

}  // namespace wflops::testing
