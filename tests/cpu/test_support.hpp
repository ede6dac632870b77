// What several CPU tests share: a fresh temporary folder, a result file read back as JSON, the
// test-only hook WFLOPS_TEST_FAKE_RUN (src/cli/run_test_hook.hpp) set for the programs a test
// starts, a Google Benchmark run as the reporter receives it, and an H100 as the device query
// describes one.
#pragma once
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "device_description.hpp"

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

// An H100 SXM (in the peak table) as src/cuda/device_info.cpp describes one, NVML loaded, with
// clocks, versions and an ordinal of its own so a test can tell where each context field came from.
inline DeviceDescription h100_device() {
  DeviceDescription d;
  d.name = "NVIDIA H100 80GB HBM3";
  d.index = 3;
  d.sm_count = 132;
  d.cc_major = 9;
  d.cc_minor = 0;
  d.mem_bytes = 85'031'714'816.0;  // 79.19 GiB
  d.l2_bytes = 50.0 * 1024 * 1024;
  d.sm_clock_max_mhz = 1980;
  d.sm_clock_mhz = 345;
  d.mem_clock_max_mhz = 2619;
  d.power_limit_w = 700;
  d.driver = "580.65.06";
  d.cuda_runtime = "13.0";
  d.cuda_driver = "13.0";
  d.cublas = "13.0.2";
  d.nvml = true;
  return d;
}

}  // namespace wflops::testing
