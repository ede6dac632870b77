// Context formatting, result-file naming and no-overwrite, and the reporter's JSON (including a
// run cut short), all without a GPU.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "context.hpp"
#include "errors.hpp"
#include "results/result_file.hpp"
#include "results/result_reporter.hpp"
#include "test_support.hpp"
#include "wflops/version.hpp"

namespace wflops {

namespace {

using testing::fresh_dir;
using testing::h100_device;
using testing::read_json;

}  // namespace

TEST(Context, HoldsGpuClocksVersionsAndPeaks) {
  const DeviceDescription d = h100_device();
  const nlohmann::json c = make_context(d, peaks_for_device(d), RunInfo{"node7", "quick", "rotate"});
  EXPECT_EQ(c["source"], "wflops");
  EXPECT_EQ(c["gpu_name"], "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(c["gpu_slug"], "h100-sxm");
  EXPECT_EQ(c["gpu_index"], 3);
  EXPECT_EQ(c["sm_count"], 132);
  EXPECT_EQ(c["cc"], "9.0");
  EXPECT_DOUBLE_EQ(c["mem_gib"].get<double>(), 79.19);
  EXPECT_EQ(c["sm_clock_max_mhz"], 1980);
  EXPECT_EQ(c["mem_clock_max_mhz"], 2619);
  EXPECT_EQ(c["power_limit_w"], 700);
  EXPECT_EQ(c["driver"], "580.65.06");
  EXPECT_EQ(c["cuda_runtime"], "13.0");
  EXPECT_EQ(c["cublas"], "13.0.2");
  EXPECT_TRUE(c["cudnn"].is_null()) << "unknown values are null, not a made-up string";
  EXPECT_EQ(c["host"], "node7");
  EXPECT_EQ(c["suite"], "quick");
  EXPECT_EQ(c["peak_tflops_bf16"], 989);
  EXPECT_EQ(c["peak_tflops_fp8"], 1979);
  EXPECT_EQ(c["peak_gbps"], 3350);
  EXPECT_EQ(c["peak_source"], "table");
  EXPECT_EQ(c["wflops_version"], kVersion);
  EXPECT_EQ(c["interrupted"], true) << "a run is interrupted until it says otherwise";
  const auto strings = context_as_strings(c);
  bool found = false;
  for (const auto& [k, v] : strings) {
    if (k == "sm_count") {
      EXPECT_EQ(v, "132");
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST(Context, WithoutNvmlClocksArePowerAreNull) {
  DeviceDescription d = h100_device();
  d.power_limit_w = 0;
  d.sm_clock_mhz = 0;
  d.nvml = false;
  const nlohmann::json c = make_context(d, peaks_for_device(d), RunInfo{"h", "", "p"});
  EXPECT_TRUE(c["power_limit_w"].is_null());
  EXPECT_TRUE(c["sm_clock_mhz"].is_null());
  EXPECT_TRUE(c["suite"].is_null());
  EXPECT_EQ(c["nvml"], false);
}

TEST(ResultFile, NameFromSlugAndTime) {
  std::tm t{};
  t.tm_year = 2026 - 1900;
  t.tm_mon = 10;  // November
  t.tm_mday = 24;
  t.tm_hour = 9;
  t.tm_min = 5;
  t.tm_sec = 7;
  EXPECT_EQ(result_file_name("h100-sxm", t), "h100-sxm-20261124-090507.json");
}

TEST(ResultFile, NeverOverwrites) {
  const auto dir = fresh_dir("names");
  std::tm t{};
  t.tm_year = 126;
  t.tm_mday = 1;
  const auto first = create_result_file(dir, "h200", t);
  const auto second = create_result_file(dir, "h200", t);
  EXPECT_EQ(first.filename(), "h200-20260101-000000.json");
  EXPECT_EQ(second.filename(), "h200-20260101-000000-2.json");
  std::ofstream(first) << "earlier results";
  EXPECT_THROW(create_result_file_at(first), UserError);
  std::ifstream in(first);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "earlier results") << "an existing file is left untouched";
  std::filesystem::remove_all(dir);
}

namespace {
benchmark::BenchmarkReporter::Run make_run(const std::string& name, double tflops, int rep) {
  auto r = testing::timed_run(name, tflops, 100, 0.035);
  r.repetition_index = rep;
  r.cpu_accumulated_time = 0.036;
  r.counters["flops"] = 274877906944.0;
  r.counters["pct_peak"] = tflops / 9.89;
  r.counters["throttled"] = 0;
  return r;
}
}  // namespace

TEST(ResultReporter, FileIsValidAfterEveryBenchmarkAndSaysWhenInterrupted) {
  const auto dir = fresh_dir("reporter");
  const auto path = dir / "r.json";
  const DeviceDescription d = h100_device();
  ResultReporter rep(path, make_context(d, peaks_for_device(d), RunInfo{"h", "quick", "p"}), nullptr);
  {
    // Valid from the moment it exists, before any benchmark ran.
    const auto doc = read_json(path);
    EXPECT_EQ(doc["context"]["interrupted"], true);
    EXPECT_TRUE(doc["benchmarks"].empty());
  }
  benchmark::BenchmarkReporter::Context ctx;
  ASSERT_TRUE(rep.ReportContext(ctx));
  rep.ReportRuns({make_run("matmul/cublaslt_auto/bf16/m:4096/n:8192/k:4096", 700.0, 0)});
  rep.ReportRuns({make_run("matmul/cublas/bf16/m:4096/n:8192/k:4096", 650.0, 0)});
  {
    // As a cut-short run leaves it: valid JSON, both finished benchmarks, interrupted = true.
    const auto doc = read_json(path);
    EXPECT_EQ(doc["context"]["interrupted"], true);
    ASSERT_EQ(doc["benchmarks"].size(), 2u);
    EXPECT_EQ(doc["benchmarks"][0]["name"], "matmul/cublaslt_auto/bf16/m:4096/n:8192/k:4096");
    EXPECT_DOUBLE_EQ(doc["benchmarks"][0]["tflops"].get<double>(), 700.0);
    EXPECT_EQ(doc["context"]["gpu_slug"], "h100-sxm");
    EXPECT_EQ(doc["context"]["sm_count"], 132) << "wflops' context keys are typed";
    EXPECT_DOUBLE_EQ(doc["summary"]["matmul_max_tflops"]["bf16"]["tflops"].get<double>(), 700.0);
  }
  auto failed = make_run("matmul/wmma/bf16/m:4096/n:8192/k:4096", 0, 0);
  failed.error_occurred = true;
  failed.error_message = "verification failed: relative error 0.5";
  failed.counters.clear();
  rep.ReportRuns({failed});
  rep.Finalize();
  const auto doc = read_json(path);
  EXPECT_EQ(doc["context"]["interrupted"], false);
  ASSERT_EQ(doc["benchmarks"].size(), 3u);
  EXPECT_EQ(doc["benchmarks"][2]["error_occurred"], true);
  EXPECT_FALSE(doc["benchmarks"][2].contains("tflops")) << "a failed benchmark reports no FLOP/s";
  EXPECT_EQ(rep.errors(), 1);
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp"));
  std::filesystem::remove_all(dir);
}

// The table printed while a run goes shows where a step's time goes, with the bandwidth of the parts
// that state their bytes.
TEST(ResultReporter, TableShowsTheTimeSplitAndThePartsBandwidth) {
  const auto dir = fresh_dir("reporter-table");
  const DeviceDescription d = h100_device();
  const auto table_path = dir / "table.txt";
  std::FILE* table = std::fopen(table_path.c_str(), "w");
  ASSERT_NE(table, nullptr);
  {
    ResultReporter rep(dir / "r.json", make_context(d, peaks_for_device(d), RunInfo{"h", "quick", "p"}), table);
    benchmark::BenchmarkReporter::Context ctx;
    ASSERT_TRUE(rep.ReportContext(ctx));
    auto step = make_run("mlp_step/unfused_relu/bf16/d:1600/ff:6400/tok:8192", 400.0, 0);
    step.counters["phase_pct_gemm"] = 80;
    step.counters["phase_pct_elementwise"] = 20;
    step.counters["phase_gbps_elementwise"] = 2512.4;
    rep.ReportRuns({step});
    rep.Finalize();
  }
  std::fclose(table);
  std::ifstream in(table_path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("elementwise 20% (2512 GB/s)"), std::string::npos) << text;
  EXPECT_NE(text.find("gemm 80%"), std::string::npos) << text;
  EXPECT_EQ(text.find("gemm 80% ("), std::string::npos) << "the GEMMs state no bytes: " << text;
  std::filesystem::remove_all(dir);
}

TEST(ResultReporter, CeilingUsesMediansOnly) {
  // A result file's entry: one repetition when `aggregate` is empty, else that aggregate of them.
  auto entry = [](const std::string& run_name, const std::string& aggregate, int repetitions, double tflops) {
    nlohmann::json e = {{"name", aggregate.empty() ? run_name : run_name + "_" + aggregate},
                        {"run_name", run_name},
                        {"run_type", aggregate.empty() ? "iteration" : "aggregate"},
                        {"repetitions", repetitions},
                        {"tflops", tflops}};
    if (!aggregate.empty()) e["aggregate_name"] = aggregate;
    return e;
  };
  const nlohmann::json b = {entry("matmul/x/bf16/m:1", "", 3, 900.0), entry("matmul/x/bf16/m:1", "median", 3, 800.0),
                            entry("matmul/x/bf16/m:1", "stddev", 3, 5.0), entry("mlp_step/x/bf16/d:1", "", 1, 950.0)};
  const auto c = matmul_ceiling(b);
  EXPECT_DOUBLE_EQ(c["bf16"]["tflops"].get<double>(), 800.0);
  EXPECT_EQ(c.size(), 1u);
}

}  // namespace wflops
