// The pieces that let a run go on in a fresh process: the reporter keeps the earlier process's
// entries first in the file and measures against them, and a dead benchmark's entries become one
// error entry.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "errors.hpp"
#include "results/result_file.hpp"
#include "results/result_reporter.hpp"
#include "test_support.hpp"

namespace wflops {

namespace {

namespace fs = std::filesystem;

using testing::fresh_dir;
using testing::read_json;

benchmark::BenchmarkReporter::Run make_run(const std::string& name, double tflops) {
  auto r = testing::timed_run(name, tflops, 10, 0.01);
  r.counters["flops"] = 1e12;
  return r;
}

nlohmann::json entry(const std::string& name, double tflops) {
  return {{"name", name},     {"run_name", name},      {"run_type", "iteration"},
          {"repetitions", 1}, {"repetition_index", 0}, {"tflops", tflops}};
}

const std::string kMatmul = "matmul/cublas/bf16/m:4096/n:8192/k:4096";
const std::string kStep = "mlp_step/linear/bf16/d:1600/ff:6400/tok:8192";

}  // namespace

TEST(RunResume, AReporterThatGoesOnKeepsTheEarlierEntriesFirstAndMeasuresAgainstThem) {
  const auto dir = fresh_dir("resume");
  const auto path = dir / "r.json";
  // The file as an earlier process left it: its context (with Google Benchmark's date) and a matmul.
  const nlohmann::json context = {
      {"source", "wflops"}, {"gpu_name", "H100"}, {"date", "the first worker's"}, {"interrupted", true}};
  const nlohmann::json earlier = nlohmann::json::array({entry(kMatmul, 800.0)});
  const auto table_path = dir / "table.txt";
  std::FILE* table = std::fopen(table_path.c_str(), "w");
  ASSERT_NE(table, nullptr);
  {
    ResultReporter rep(path, context, table, earlier);
    {
      // From the moment the reporter exists the file still holds the earlier benchmark.
      const auto doc = read_json(path);
      ASSERT_EQ(doc["benchmarks"].size(), 1u);
      EXPECT_EQ(doc["benchmarks"][0]["run_name"], kMatmul);
      EXPECT_EQ(doc["context"]["interrupted"], true);
    }
    rep.set_baselines({{kStep, kMatmul}});
    ASSERT_TRUE(rep.ReportContext(benchmark::BenchmarkReporter::Context()));
    rep.ReportRuns({make_run(kStep, 400.0)});
  }
  std::fclose(table);
  const auto doc = read_json(path);
  ASSERT_EQ(doc["benchmarks"].size(), 2u);
  EXPECT_EQ(doc["benchmarks"][0]["run_name"], kMatmul);
  EXPECT_EQ(doc["benchmarks"][1]["run_name"], kStep);
  // Against the matmul measured by the earlier process: 400 / 800.
  EXPECT_DOUBLE_EQ(doc["benchmarks"][1]["pct_best_gemm"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(doc["benchmarks"][1]["pct_baseline"].get<double>(), 50.0);
  EXPECT_EQ(doc["context"]["date"], "the first worker's") << "the run's context stays as it began";
  EXPECT_DOUBLE_EQ(doc["summary"]["matmul_max_tflops"]["bf16"]["tflops"].get<double>(), 800.0);
  std::ifstream in(table_path);
  const std::string printed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(printed.find("time/ms"), std::string::npos) << "the table goes on without a second heading:\n" << printed;
  EXPECT_NE(printed.find(kStep), std::string::npos) << printed;
  fs::remove_all(dir);
}

TEST(RunResume, ADeadBenchmarkBecomesOneErrorEntryInGoogleBenchmarksShape) {
  nlohmann::json doc = {{"context", {{"source", "wflops"}}},
                        {"benchmarks", {entry(kMatmul, 800.0), entry(kStep, 1.0), entry(kStep, 2.0)}}};
  record_benchmark_error(doc, kStep, "the benchmark process died while it ran: signal 11 (Segmentation fault)");
  ASSERT_EQ(doc["benchmarks"].size(), 2u) << "the cut-short repetitions are replaced, others kept";
  EXPECT_EQ(doc["benchmarks"][0]["run_name"], kMatmul);
  const auto& e = doc["benchmarks"][1];
  EXPECT_EQ(e["name"], kStep);
  EXPECT_EQ(e["run_name"], kStep);
  EXPECT_EQ(e["run_type"], "iteration");
  EXPECT_EQ(e["error_occurred"], true);
  EXPECT_EQ(e["error_message"], "the benchmark process died while it ran: signal 11 (Segmentation fault)");
  EXPECT_FALSE(e.contains("tflops"));
  EXPECT_EQ(benchmark_run_names(doc), (std::set<std::string>{kMatmul, kStep}));

  // Written and read back whole.
  const auto dir = fresh_dir("resume-error");
  write_result_document(dir / "r.json", doc);
  EXPECT_EQ(read_result_document(dir / "r.json"), doc);
  std::ofstream(dir / "broken.json") << "{\"context\": {";
  EXPECT_THROW(read_result_document(dir / "broken.json"), UserError);
  EXPECT_THROW(read_result_document(dir / "missing.json"), UserError);
  fs::remove_all(dir);
}

}  // namespace wflops
