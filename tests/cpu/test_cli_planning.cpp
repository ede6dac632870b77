// The params, budget, plan, compare and seed-table subcommands as a user meets them: exit codes, JSON keys
// and the hand-checked figures of issue 6, by running the built program.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "program_run.hpp"

namespace {

using wflops::testing::ProgramRun;

ProgramRun wflops(const std::string& args, bool with_stderr = false) {
  return wflops::testing::run_wflops(args, with_stderr);
}

nlohmann::json json_of(const ProgramRun& o) { return nlohmann::json::parse(o.out); }

const std::string kData = WFLOPS_SOURCE_DIR "/tests/data/";

TEST(CliParams, JsonKeysAndGpt2Small) {
  const auto o = wflops("params --hidden 768 --layers 12 --vocab 50257 --seq 1024 --json");
  ASSERT_EQ(o.code, 0) << o.out;
  const auto j = json_of(o);
  for (const char* key : {"params_total", "params_non_embedding", "params_active", "flops_per_token"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_DOUBLE_EQ(j["params_total"].get<double>(), 124356864.0);
  EXPECT_DOUBLE_EQ(j["flops_per_token"].get<double>(), 622854144.0);
}

TEST(CliParams, MoeAndErrors) {
  const auto o = wflops("params --hidden 768 --layers 12 --vocab 50257 --seq 1024 --experts 8 --granularity 2 --causal --json");
  ASSERT_EQ(o.code, 0);
  // 509,607,936 weight + 56,623,104 causal attention + 2,064,384 routing.
  EXPECT_DOUBLE_EQ(json_of(o)["flops_per_token"].get<double>(), 568295424.0);
  EXPECT_NE(wflops("params --hidden 768 --layers 12 --vocab 50257").code, 0);  // --seq missing
  const auto bad = wflops("params --hidden -768 --layers 12 --vocab 50257 --seq 1024", true);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("--hidden must be a positive number"), std::string::npos) << bad.out;
  EXPECT_EQ(wflops("params --hidden 768 --layers 12 --vocab 50257 --seq 1024 --granularity 4").code, 1);
}

TEST(CliBudget, HandCheckedCases) {
  auto o = wflops("budget --params 82e9 --tokens 150e9 --gpus 1024 --tflops 312 --json");
  ASSERT_EQ(o.code, 0);
  auto j = json_of(o);
  EXPECT_DOUBLE_EQ(j["flops"].get<double>(), 7.38e22);
  EXPECT_NEAR(j["days"].get<double>(), 2.6735, 1e-4);
  EXPECT_NEAR(j["gpu_hours"].get<double>(), 65705.13, 0.01);
  o = wflops("budget --gpus 64 --days 60 --tflops 400 --json");
  ASSERT_EQ(o.code, 0);
  j = json_of(o);
  EXPECT_DOUBLE_EQ(j["flops"].get<double>(), 1.327104e23);
  EXPECT_DOUBLE_EQ(j["days"].get<double>(), 60.0);
  EXPECT_DOUBLE_EQ(j["gpu_hours"].get<double>(), 92160.0);
}

TEST(CliBudget, MeasuredTauAndModelShape) {
  // tau 700 TFLOP/s (the median) from the H100 file: 7.38e22 / (1024 x 7e14) / 86400 = 1.19170 days.
  auto o = wflops("budget --params 82e9 --tokens 150e9 --gpus 1024 --results " + kData +
                  "h100.json --benchmark matmul/cublaslt_auto/bf16/m:4096/n:8192/k:4096 --json");
  ASSERT_EQ(o.code, 0);
  EXPECT_NEAR(json_of(o)["days"].get<double>(), 7.38e22 / (1024 * 7e14) / 86400, 1e-12);
  // A model shape instead of --params: flops_per_token x D.
  o = wflops("budget --hidden 768 --layers 12 --vocab 50257 --seq 1024 --tokens 1e9 --gpus 1 --tflops 100 --json");
  ASSERT_EQ(o.code, 0);
  EXPECT_DOUBLE_EQ(json_of(o)["flops"].get<double>(), 622854144.0 * 1e9);
}

TEST(CliBudget, Errors) {
  const auto missing = wflops("budget --params 82e9 --tokens 150e9 --gpus 1024", true);
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.out.find("--tflops"), std::string::npos) << missing.out;
  EXPECT_EQ(wflops("budget --params 82e9 --tokens 150e9 --gpus 1024 --tflops 312 --results x.json --benchmark y").code, 1);
  EXPECT_EQ(wflops("budget --params 82e9 --tokens 0 --gpus 8 --tflops 312").code, 1);
  EXPECT_EQ(wflops("budget --params 82e9 --tokens 1e9 --gpus 8 --tflops 312 --days 3").code, 1);
  const auto absent = wflops("budget --params 1e9 --tokens 1e9 --gpus 8 --results " + kData +
                                 "a100.json --benchmark matmul/wmma/bf16/m:4096/n:4096/k:4096",
                             true);
  EXPECT_EQ(absent.code, 1);
  EXPECT_NE(absent.out.find("failed"), std::string::npos) << absent.out;
  const auto bad_file = wflops("budget --params 1e9 --tokens 1e9 --gpus 8 --results " + kData + "malformed.json --benchmark x", true);
  EXPECT_EQ(bad_file.code, 1);
  EXPECT_NE(bad_file.out.find("malformed.json' is not valid JSON"), std::string::npos) << bad_file.out;
}

TEST(CliPlan, JsonKeys) {
  const auto o = wflops("plan --flops 1e21 --json");
  ASSERT_EQ(o.code, 0);
  const auto j = json_of(o);
  for (const char* key : {"params", "tokens", "loss"}) EXPECT_TRUE(j["dense"].contains(key)) << key;
  for (const char* key : {"n_blocks", "d_model", "active_params", "total_params", "tokens", "granularity", "loss"}) {
    EXPECT_TRUE(j["moe"].contains(key)) << key;
  }
  EXPECT_EQ(j["moe"]["n_blocks"].get<int>(), 37);
  EXPECT_DOUBLE_EQ(j["moe"]["granularity"].get<double>(), 16.0);
  EXPECT_NEAR(j["dense_compute_multiplier"].get<double>(), 23.24989, 1e-4);
  EXPECT_TRUE(j["time"].is_null());
}

TEST(CliPlan, BudgetFromGpusAndTimeSearch) {
  // 64 GPUs x 30 days at the file's dense tau (600 TFLOP/s): 600e12 x 64 x 30 x 86400 = 9.95328e22.
  const auto o = wflops("plan --gpus 64 --days 30 --results " + kData + "moe_h100.json --json");
  ASSERT_EQ(o.code, 0);
  const auto j = json_of(o);
  EXPECT_DOUBLE_EQ(j["budget_flops"].get<double>(), 9.95328e22);
  ASSERT_TRUE(j["time"].is_object());
  EXPECT_DOUBLE_EQ(j["time"]["gpu_hours"].get<double>(), 64 * 30 * 24.0);
  EXPECT_EQ(j["time"]["granularities"].size(), 7u);
  // Finer experts win per FLOP, but their measured tau falls (580 at G = 1 to 150 at G = 64), so
  // in GPU time a coarser G wins.
  EXPECT_DOUBLE_EQ(j["time"]["flop_optimal_granularity"].get<double>(), 32.0);
  EXPECT_DOUBLE_EQ(j["time"]["time_optimal_granularity"].get<double>(), 8.0);
  EXPECT_LT(j["time"]["time_optimal_granularity"].get<double>(), j["time"]["flop_optimal_granularity"].get<double>());
}

TEST(CliPlan, Errors) {
  EXPECT_EQ(wflops("plan").code, 1);
  EXPECT_EQ(wflops("plan --gpus 8 --days 3").code, 1);
  EXPECT_EQ(wflops("plan --flops -1").code, 1);
  EXPECT_EQ(wflops("plan --flops 1e21 --days 3 --gpus 8").code, 1);
  EXPECT_EQ(wflops("plan --gpus 8 --days 3 --results " + kData + "not_wflops.json").code, 1);
  // Budgets at both ends of the supported range still plan.
  EXPECT_EQ(wflops("plan --flops 1e17 --json").code, 0);
  EXPECT_EQ(wflops("plan --flops 1e27 --json").code, 0);
}

TEST(CliCompare, FormatsAndErrors) {
  const std::string files = kData + "a100.json " + kData + "h100.json";
  auto o = wflops("compare " + files + " --format json");
  ASSERT_EQ(o.code, 0);
  const auto j = json_of(o);
  for (const char* key : {"files", "benchmarks", "only_in_some", "warnings", "cluster"}) EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(wflops("compare " + files + " --format markdown").code, 0);
  o = wflops("compare " + files + " --format csv");
  ASSERT_EQ(o.code, 0);
  EXPECT_EQ(o.out.rfind("benchmark,tflops_1", 0), 0u);
  EXPECT_EQ(wflops("compare " + files + " --format xml").code, 1);
  EXPECT_NE(wflops("compare " + kData + "a100.json").code, 0);  // one file
  const auto bad = wflops("compare " + kData + "a100.json " + kData + "not_wflops.json", true);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("not_wflops.json' is not a wflops result file"), std::string::npos) << bad.out;
}

TEST(CliCompare, ClusterFlagsTheSlowNode) {
  const auto o = wflops("compare " + kData + "cluster/node1-gpu0.json " + kData + "cluster/node2-gpu0.json " + kData +
                        "cluster/node3-gpu0.json " + kData + "cluster/node4-gpu0.json --format json");
  ASSERT_EQ(o.code, 0);
  const auto c = json_of(o)["cluster"];
  ASSERT_TRUE(c.is_object());
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(c["files"][i]["outlier"].get<bool>(), i == 2) << i;
}

TEST(CliSeedTable, FileWithoutTheSeedRowsAndMalformedFilesFailClearly) {
  const auto none = wflops("seed-table " + kData + "h100.json", true);
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.out.find("--suite seed"), std::string::npos) << none.out;
  const auto bad = wflops("seed-table " + kData + "malformed.json", true);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("malformed.json"), std::string::npos) << bad.out;
  EXPECT_NE(wflops("seed-table", true).code, 0);  // the file is required
}

}  // namespace
