// Reading result files: the hand-made fixtures of tests/data, clear errors for files that are not
// JSON or not wflops results, and a round trip through the writer of `wflops run`
// (ResultReporter), so the reader reads exactly what wflops writes.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "context.hpp"
#include "errors.hpp"
#include "model/peaks.hpp"
#include "results/result_reader.hpp"
#include "results/result_reporter.hpp"
#include "test_support.hpp"

namespace {

using namespace wflops;

const std::string kData = WFLOPS_SOURCE_DIR "/tests/data/";

std::string error_of(const std::string& text, const std::string& path = "x.json") {
  try {
    parse_result_text(text, path);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string file_error_of(const std::string& path) {
  try {
    read_result_file(path);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ResultReader, RepetitionsFoldToTheMedian) {
  const ResultFile f = read_result_file(kData + "a100.json");
  ASSERT_EQ(f.benchmarks.size(), 5u);  // repetitions and aggregates are one benchmark each
  const BenchmarkResult* b = f.find("matmul/cublaslt_auto/bf16/m:4096/n:8192/k:4096");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->repetitions, 3);
  EXPECT_DOUBLE_EQ(*b->tflops, 250.0);       // median of 250, 252, 248
  EXPECT_DOUBLE_EQ(*b->tflops_stddev, 2.0);  // the stddev aggregate
  EXPECT_NEAR(*b->pct_peak, 250.0 / 312 * 100, 1e-9);
  EXPECT_DOUBLE_EQ(*b->flops, 2.0 * 4096 * 8192 * 4096);
  EXPECT_EQ(b->repetition_tflops, (std::vector<double>{250, 252, 248}));
  EXPECT_EQ(f.context_text("gpu_name"), "NVIDIA A100-SXM4-80GB");
  EXPECT_EQ(f.label(), "NVIDIA A100-SXM4-80GB (dgx-a1 #0)");
  EXPECT_EQ(*f.context_number("peak_tflops_bf16"), 312.0);
}

TEST(ResultReader, SingleRunsAndFailures) {
  const ResultFile f = read_result_file(kData + "a100.json");
  const BenchmarkResult* single = f.find("matmul/cublaslt_auto/tf32/m:8192/n:8192/k:8192");
  ASSERT_NE(single, nullptr);
  EXPECT_EQ(single->repetitions, 1);
  EXPECT_DOUBLE_EQ(*single->tflops, 140.0);
  EXPECT_FALSE(single->tflops_stddev.has_value());
  const BenchmarkResult* failed = f.find("matmul/wmma/bf16/m:4096/n:4096/k:4096");
  ASSERT_NE(failed, nullptr);
  EXPECT_TRUE(failed->failed);
  EXPECT_FALSE(failed->tflops.has_value());
  EXPECT_NE(failed->error_message.find("verification failed"), std::string::npos);
  EXPECT_DOUBLE_EQ(measured_tflops(f, "matmul/cublaslt_auto/tf32/m:8192/n:8192/k:8192"), 140.0);
  EXPECT_THROW(measured_tflops(f, "matmul/wmma/bf16/m:4096/n:4096/k:4096"), UserError);
  EXPECT_THROW(measured_tflops(f, "matmul/cublaslt_auto/bf16/m:1/n:1/k:1"), UserError);
}

TEST(ResultReader, MedianAndSpreadWithoutAggregates) {
  // Repetitions written without aggregates: the reader takes their median and sample stddev.
  const std::string text = R"({"context": {"source": "pytorch", "gpu_name": "NVIDIA H100 80GB HBM3"},
    "benchmarks": [
      {"name": "matmul/torch_eager/bf16/m:8192/n:8192/k:8192", "tflops": 760},
      {"name": "matmul/torch_eager/bf16/m:8192/n:8192/k:8192", "tflops": 790},
      {"name": "matmul/torch_eager/bf16/m:8192/n:8192/k:8192", "tflops": 770}]})";
  const ResultFile f = parse_result_text(text, "peer.json");
  ASSERT_EQ(f.benchmarks.size(), 1u);
  EXPECT_DOUBLE_EQ(*f.benchmarks[0].tflops, 770.0);
  // mean 773.33; deviations -13.33, 16.67, -3.33; sum of squares 466.67 / 2 = 233.33; sqrt 15.275.
  EXPECT_NEAR(*f.benchmarks[0].tflops_stddev, 15.2753, 1e-4);
  EXPECT_EQ(f.benchmarks[0].repetitions, 3);
}

TEST(ResultReader, ClearErrors) {
  EXPECT_THROW(read_result_file(kData + "malformed.json"), UserError);
  const std::string malformed = file_error_of(kData + "malformed.json");
  EXPECT_NE(malformed.find("malformed.json"), std::string::npos) << malformed;
  EXPECT_NE(malformed.find("not valid JSON"), std::string::npos) << malformed;
  EXPECT_NE(malformed.find("line 5"), std::string::npos) << malformed;
  const std::string not_wflops = file_error_of(kData + "not_wflops.json");
  EXPECT_NE(not_wflops.find("not_wflops.json' is not a wflops result file"), std::string::npos) << not_wflops;
  EXPECT_NE(not_wflops.find("'source'"), std::string::npos) << not_wflops;
  const std::string missing = file_error_of(kData + "no_such_file.json");
  EXPECT_NE(missing.find("no such file"), std::string::npos) << missing;
  EXPECT_NE(error_of("[1, 2]").find("top level is a JSON array"), std::string::npos);
  EXPECT_NE(error_of(R"({"benchmarks": []})").find("no 'context' object"), std::string::npos);
  EXPECT_NE(error_of(R"({"context": {"source": "wflops", "gpu_name": "x", "wflops_version": "0.1.0"}})")
                .find("no 'benchmarks' array"),
            std::string::npos);
  EXPECT_NE(
      error_of(R"({"context": {"source": "other", "gpu_name": "x"}, "benchmarks": []})").find("'source' is \"other\""),
      std::string::npos);
  EXPECT_NE(error_of(R"({"context": {"source": "wflops", "gpu_name": "x"}, "benchmarks": []})").find("wflops_version"),
            std::string::npos);
  const std::string bad_counter = R"({"context": {"source": "pytorch", "gpu_name": "x"},
      "benchmarks": [{"name": "matmul/a/bf16", "tflops": "fast"}]})";
  EXPECT_NE(error_of(bad_counter).find("benchmarks[0] ('matmul/a/bf16'): counter 'tflops' is a string"),
            std::string::npos)
      << error_of(bad_counter);
  EXPECT_NE(error_of(R"({"context": {"source": "pytorch", "gpu_name": "x", "peak_gbps": "fast"}, "benchmarks": []})")
                .find("'peak_gbps' is a string"),
            std::string::npos);
}

TEST(BenchmarkNames, Split) {
  const auto n = parse_benchmark_name("moe_step/grouped/bf16/d:2048/E:64/G:8/tok:32768/route:expert_choice");
  EXPECT_EQ(n.family, "moe_step");
  EXPECT_EQ(n.implementation, "grouped");
  EXPECT_EQ(n.dtype, "bf16");
  EXPECT_EQ(*n.number("G"), 8.0);
  EXPECT_EQ(*n.param("route"), "expert_choice");
  EXPECT_FALSE(n.number("route").has_value());
  EXPECT_FALSE(n.param("k").has_value());
  const auto cast = parse_benchmark_name("cast/vec16/fp32_bf16/n:268435456");
  EXPECT_EQ(cast.dtype, "fp32_bf16");
  EXPECT_EQ(*cast.number("n"), 268435456.0);
}

// Repetition `index` of three of a 4096 x 8192 x 4096 matmul at `tflops`, 10 iterations.
benchmark::BenchmarkReporter::Run make_run(const std::string& name, double tflops, int index) {
  const double flops = 2.0 * 4096 * 8192 * 4096;
  benchmark::BenchmarkReporter::Run r = wflops::testing::timed_run(name, tflops, 10, 10 * flops / (tflops * 1e12));
  r.run_name.time_type = "manual_time";  // what UseManualTime() adds; the reporter drops it
  r.repetition_index = index;
  r.repetitions = 3;
  r.counters["flops"] = benchmark::Counter(flops);
  r.counters["pct_peak"] = benchmark::Counter(tflops / 989 * 100);
  r.counters["throttled"] = benchmark::Counter(0);
  return r;
}

// What ResultReporter writes (the writer of `wflops run`) reads back. The schema test
// (tests/scripts/check_schema.py) runs this test with WFLOPS_WRITTEN_RESULT set and validates the
// file it leaves there against docs/result.schema.json.
TEST(ResultWriter, RoundTrip) {
  namespace fs = std::filesystem;
  const char* env = std::getenv("WFLOPS_WRITTEN_RESULT");
  const fs::path path = env ? fs::path(env) : fs::temp_directory_path() / "wflops_written_result_test.json";
  DeviceDescription dev;
  dev.name = "NVIDIA H100 80GB HBM3";
  dev.sm_count = 132;
  dev.cc_major = 9;
  dev.mem_bytes = 80.0 * (1ull << 30);
  dev.l2_bytes = 50.0 * (1 << 20);
  dev.driver = "580.65.06";
  dev.cuda_runtime = "13.0";
  dev.cublas = "13.0.0";
  const auto peaks = peaks_by_slug("h100-sxm");
  ASSERT_TRUE(peaks.has_value());
  RunInfo info;
  info.host = "testhost";
  info.suite = "quick";
  info.l2_policy = "none";

  benchmark::BenchmarkReporter::Context::executable_name = "wflops_cpu_tests";
  {
    ResultReporter reporter(path, make_context(dev, *peaks, info), nullptr);
    ASSERT_TRUE(reporter.ReportContext(benchmark::BenchmarkReporter::Context()));
    const std::string name = "matmul/cublaslt_auto/bf16/m:4096/n:8192/k:4096";
    std::vector<benchmark::BenchmarkReporter::Run> runs = {make_run(name, 700, 0), make_run(name, 710, 1),
                                                           make_run(name, 690, 2)};
    auto median = make_run(name, 700, 0);
    median.run_type = benchmark::BenchmarkReporter::Run::RT_Aggregate;
    median.aggregate_name = "median";
    auto stddev = make_run(name, 10, 0);
    stddev.run_type = benchmark::BenchmarkReporter::Run::RT_Aggregate;
    stddev.aggregate_name = "stddev";
    runs.push_back(median);
    runs.push_back(stddev);
    reporter.ReportRuns(runs);
    auto broken = make_run("matmul/wmma/bf16/m:64/n:64/k:64", 1, 0);
    broken.repetitions = 1;
    broken.error_occurred = true;
    broken.error_message = "verification failed";
    broken.counters.clear();
    reporter.ReportRuns({broken});
    // Read against the matmul above: its best bf16 tau (700) and its named baseline.
    const std::string step = "mlp_step/fused_gelu/bf16/d:1600/ff:6400/tok:8192";
    reporter.set_baselines({{step, name}});
    auto step_run = make_run(step, 560, 0);
    step_run.repetitions = 1;
    reporter.ReportRuns({step_run});
    // Two granularities of one MoE configuration, and a slower implementation at G = 8.
    for (const auto& [moe, tflops] : std::vector<std::pair<std::string, double>>{
             {"moe_step/grouped/bf16/d:2048/E:64/G:8/tok:32768/route:expert_choice", 400},
             {"moe_step/loop/bf16/d:2048/E:64/G:8/tok:32768/route:expert_choice", 300},
             {"moe_step/grouped/bf16/d:2048/E:64/G:1/tok:32768/route:expert_choice", 500}}) {
      auto moe_run = make_run(moe, tflops, 0);
      moe_run.repetitions = 1;
      reporter.ReportRuns({moe_run});
    }
    reporter.Finalize();
  }
  const ResultFile f = read_result_file(path);
  EXPECT_EQ(f.context_text("source"), "wflops");
  EXPECT_EQ(f.context_text("gpu_slug"), "h100-sxm");
  EXPECT_EQ(f.context_text("interrupted"), "false");
  ASSERT_EQ(f.benchmarks.size(), 6u);
  // The tau(G) curve: sorted by G, the fastest implementation at each G.
  std::ifstream in(path);
  const nlohmann::json doc = nlohmann::json::parse(in);
  const nlohmann::json& curve =
      doc["summary"]["moe_tau_by_granularity"]["bf16/d:2048/E:64/tok:32768/route:expert_choice"];
  ASSERT_EQ(curve.size(), 2u);
  EXPECT_EQ(curve[0]["G"], 1.0);
  EXPECT_EQ(curve[0]["tflops"], 500.0);
  EXPECT_EQ(curve[1]["G"], 8.0);
  EXPECT_EQ(curve[1]["tflops"], 400.0);
  EXPECT_EQ(curve[1]["benchmark"], "moe_step/grouped/bf16/d:2048/E:64/G:8/tok:32768/route:expert_choice");
  EXPECT_EQ(f.benchmarks[0].name, "matmul/cublaslt_auto/bf16/m:4096/n:8192/k:4096");  // no /manual_time
  EXPECT_DOUBLE_EQ(*f.benchmarks[0].tflops, 700.0);
  EXPECT_EQ(f.benchmarks[0].counters.count("pct_best_gemm"), 0u);        // a matmul is the ceiling itself
  EXPECT_DOUBLE_EQ(f.benchmarks[2].counters.at("pct_best_gemm"), 80.0);  // 560 / 700
  EXPECT_DOUBLE_EQ(f.benchmarks[2].counters.at("pct_baseline"), 80.0);
  EXPECT_DOUBLE_EQ(*f.benchmarks[0].tflops_stddev, 10.0);
  EXPECT_EQ(f.benchmarks[0].repetitions, 3);
  EXPECT_TRUE(f.benchmarks[1].failed);
  if (!env) fs::remove(path);
}

}  // namespace
