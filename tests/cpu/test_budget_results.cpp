// `wflops budget --results` with model steps: the file's only model step is the default tau,
// several need --benchmark (and the error names them), and the time is printed beside the naive
// datasheet-peak estimate, as the reference article does for HyperCLOVA (2.67 days at peak against
// 13.4 days reported).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "program_run.hpp"

namespace wflops {

namespace {

const std::string kFixture = std::string(WFLOPS_SOURCE_DIR) + "/tests/data/model_step_h100.json";
const std::string kFused = "model_step/fused/bf16/arch:gpt2/d:1600/L:8/h:25/s:256/b:32/V:50257";
// HyperCLOVA as the article gives it: 82e9 parameters, 150e9 tokens, 1024 A100s.
const std::string kHyperClova = "budget --params 82e9 --tokens 150e9 --gpus 1024 ";

// A result file of one A100 with a single model step at `tflops` (fp16, the article's precision).
std::string a100_file(double tflops) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("wflops-budget-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
                     std::to_string(static_cast<long>(tflops * 1000)) + ".json");
  const nlohmann::json doc = {
      {"context",
       {{"source", "wflops"},
        {"wflops_version", "0.1.0"},
        {"gpu_name", "NVIDIA A100-SXM4-80GB"},
        {"peak_tflops_fp16", 312.0},
        {"peak_tflops_bf16", 312.0}}},
      {"benchmarks",
       {{{"name", "model_step/fused/fp16/arch:gpt2/d:1600/L:8/h:25/s:256/b:32/V:50257"},
         {"flops", 16031966822400.0},
         {"tflops", tflops}},
        {{"name", "matmul/cublaslt_auto/fp16/m:4096/n:8192/k:4096"}, {"flops", 274877906944.0}, {"tflops", 237.0}}}}};
  std::ofstream(path) << doc.dump(2);
  return path.string();
}

}  // namespace

TEST(BudgetResults, ModelStepBesideTheDatasheetPeak) {
  // 7.38e22 FLOPs on 1024 A100s: at the 312 TFLOP/s peak 7.38e22 / 3.19488e17 s = 2.6735 days. The
  // article reports 13.4 days, i.e. a tau of 312 x 2.6735 / 13.4 = 62.25 TFLOP/s; a model step
  // measured at that gives the reported time.
  const std::string file = a100_file(62.25);
  auto o = testing::run_wflops(kHyperClova + "--results " + file + " --json", false);
  ASSERT_EQ(o.code, 0) << o.out;
  auto j = nlohmann::json::parse(o.out);
  EXPECT_NEAR(j["days"].get<double>(), 13.400, 1e-3);
  EXPECT_NEAR(j["peak_days"].get<double>(), 2.6735, 1e-4);
  EXPECT_DOUBLE_EQ(j["peak_tflops_per_gpu"].get<double>(), 312.0);
  EXPECT_NE(j["tflops_source"].get<std::string>().find("model_step/fused/fp16"), std::string::npos)
      << "the file's only model step is taken without --benchmark";
  o = testing::run_wflops(kHyperClova + "--results " + file);
  ASSERT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("13.400 days"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("the naive estimate at the datasheet peak (312.0 TFLOP/s, fp16 on NVIDIA A100-SXM4-80GB)"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("2.674 days"), std::string::npos) << o.out;     // 2.67355
  EXPECT_NE(o.out.find("5.01x as long"), std::string::npos) << o.out;  // 312 / 62.25
  // --benchmark still chooses another row, and its peak is its own dtype's.
  o = testing::run_wflops(
      kHyperClova + "--results " + file + " --benchmark matmul/cublaslt_auto/fp16/m:4096/n:8192/k:4096 --json", false);
  ASSERT_EQ(o.code, 0) << o.out;
  EXPECT_NEAR(nlohmann::json::parse(o.out)["days"].get<double>(), 7.38e22 / (1024 * 237e12) / 86400, 1e-12);
  std::filesystem::remove(file);
}

TEST(BudgetResults, SeveralModelStepsNeedBenchmark) {
  const auto o = testing::run_wflops(kHyperClova + "--results " + kFixture);
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.out.rfind("wflops: error: ", 0), 0u) << o.out;
  EXPECT_EQ(o.out.find('\n'), o.out.size() - 1) << "one line: " << o.out;
  EXPECT_NE(o.out.find("has 2 model steps; choose one with --benchmark"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("model_step/eager/bf16/arch:gpt2"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find(kFused), std::string::npos) << o.out;
  // A file with no model step still needs --benchmark.
  const auto none = testing::run_wflops(kHyperClova + "--results " + WFLOPS_SOURCE_DIR "/tests/data/h100.json");
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.out.find("--results needs --benchmark NAME"), std::string::npos) << none.out;
  // --benchmark belongs to --results.
  const auto stray = testing::run_wflops(kHyperClova + "--tflops 312 --benchmark " + kFused);
  EXPECT_EQ(stray.code, 1);
  EXPECT_NE(stray.out.find("--benchmark chooses a benchmark of --results"), std::string::npos) << stray.out;
}

TEST(BudgetResults, ChosenModelStepOfTheH100Fixture) {
  // The fused step: 16,031,966,822,400 FLOPs in 32.60 ms = 491.778 TFLOP/s; 7.38e22 / (1024 x 491.778e12)
  // = 146,552 s = 1.6962 days against 0.8434 at the 989 TFLOP/s bf16 peak, 2.01x.
  const auto o =
      testing::run_wflops(kHyperClova + "--results " + kFixture + " --benchmark " + kFused + " --json", false);
  ASSERT_EQ(o.code, 0) << o.out;
  const auto j = nlohmann::json::parse(o.out);
  EXPECT_NEAR(j["tflops_per_gpu"].get<double>(), 491.778, 1e-3);
  EXPECT_NEAR(j["days"].get<double>(), 1.6962, 1e-4);
  EXPECT_NEAR(j["peak_days"].get<double>(), 0.84342, 1e-5);
  // A time budget gets the FLOPs the peak would buy beside the measured ones: 989 / 491.778 = 2.011x.
  const auto days = testing::run_wflops(
      "budget --gpus 64 --days 60 --results " + kFixture + " --benchmark " + kFused + " --json", false);
  ASSERT_EQ(days.code, 0) << days.out;
  const auto d = nlohmann::json::parse(days.out);
  EXPECT_NEAR(d["peak_flops"].get<double>() / d["flops"].get<double>(), 989.0 / 491.778, 1e-5);
}

}  // namespace wflops
