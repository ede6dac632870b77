// The params, budget, plan, compare and seed-table subcommands as a user meets them: exit codes, JSON keys
// and the hand-checked figures of the planning commands, by running the built program.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

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
  const auto o =
      wflops("params --hidden 768 --layers 12 --vocab 50257 --seq 1024 --experts 8 --granularity 2 --causal --json");
  ASSERT_EQ(o.code, 0);
  // 509,607,936 weight + 56,623,104 causal attention + 2,064,384 routing.
  EXPECT_DOUBLE_EQ(json_of(o)["flops_per_token"].get<double>(), 568295424.0);
  EXPECT_NE(wflops("params --hidden 768 --layers 12 --vocab 50257").code, 0);  // --seq missing
  const auto bad = wflops("params --hidden -768 --layers 12 --vocab 50257 --seq 1024", true);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("--hidden must be a positive number"), std::string::npos) << bad.out;
  EXPECT_EQ(wflops("params --hidden 768 --layers 12 --vocab 50257 --seq 1024 --granularity 4").code, 1);
}

// --arch presets: the model_step family's counts (flops_model.hpp), the same N_w as the FLOP model's tests.
TEST(CliParams, ArchGpt2ReferenceAndSmall) {
  auto o = wflops("params --arch gpt2 --json");
  ASSERT_EQ(o.code, 0) << o.out;
  auto j = json_of(o);
  EXPECT_EQ(j["arch"], "gpt2");
  EXPECT_DOUBLE_EQ(j["tokens"].get<double>(), 8192.0);
  // 8 x 12 x 1600^2 = 245,760,000 + tied head 50,257 x 1600 = 80,411,200.
  EXPECT_DOUBLE_EQ(j["weights_per_token"].get<double>(), 326171200.0);
  EXPECT_DOUBLE_EQ(j["step_flops_weight"].get<double>(), 16031966822400.0);
  EXPECT_DOUBLE_EQ(j["step_flops_attention"].get<double>(), 187904819200.0);
  EXPECT_DOUBLE_EQ(j["step_flops_model"].get<double>(), 16219871641600.0);
  EXPECT_DOUBLE_EQ(j["flops_per_token_weight"].get<double>(), 6 * 326171200.0);
  EXPECT_DOUBLE_EQ(j["params_total"].get<double>(), 326750400.0);
  // GPT-2 small from the preset: the flags given replace the preset's sizes, the vocabulary stays.
  o = wflops("params --arch gpt2 --hidden 768 --heads 12 --layers 12 --seq 1024 --batch 16 --json");
  ASSERT_EQ(o.code, 0) << o.out;
  j = json_of(o);
  EXPECT_DOUBLE_EQ(j["weights_per_token"].get<double>(), 123532032.0);
  EXPECT_DOUBLE_EQ(j["step_flops_model"].get<double>(), 13226024632320.0);
  EXPECT_DOUBLE_EQ(j["params_total"].get<double>(), 124439808.0);  // the published GPT-2 small, biases included
  EXPECT_DOUBLE_EQ(j["ffn"].get<double>(), 3072.0);
  // Untying adds a second V x d matrix to the parameters but not to N_w: the head is multiplied once
  // per token either way.
  o = wflops("params --arch gpt2 --untied --json");
  ASSERT_EQ(o.code, 0) << o.out;
  j = json_of(o);
  EXPECT_DOUBLE_EQ(j["params_total"].get<double>(), 326750400.0 + 80411200.0);
  EXPECT_DOUBLE_EQ(j["weights_per_token"].get<double>(), 326171200.0);
  // The table says the same N_w and names the head as counted once.
  o = wflops("params --arch gpt2");
  ASSERT_EQ(o.code, 0);
  EXPECT_NE(o.out.find("326,171,200"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("tied: counted once"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("16,219,871,641,600"), std::string::npos) << o.out;
}

TEST(CliParams, ArchLlama) {
  auto o = wflops("params --arch llama --json");
  ASSERT_EQ(o.code, 0) << o.out;
  auto j = json_of(o);
  // 2 x (41,943,040 GQA attention + 176,160,768 SwiGLU) + untied head 525,336,576.
  EXPECT_DOUBLE_EQ(j["weights_per_token"].get<double>(), 961544192.0);
  EXPECT_DOUBLE_EQ(j["kv_heads"].get<double>(), 8.0);
  EXPECT_TRUE(j["untied"].get<bool>());
  EXPECT_DOUBLE_EQ(j["step_flops_model"].get<double>(), 24592982736896.0);
  o = wflops("params --arch llama --batch 2 --json");
  ASSERT_EQ(o.code, 0);
  EXPECT_DOUBLE_EQ(json_of(o)["step_flops_model"].get<double>(), 49185965473792.0);
  // All 32 layers: Llama-3-8B's 8,030,261,248 parameters.
  o = wflops("params --arch llama --layers 32 --json");
  ASSERT_EQ(o.code, 0);
  EXPECT_DOUBLE_EQ(json_of(o)["params_total"].get<double>(), 8030261248.0);
  // Multi-head K/V (--kv-heads 32): K and V 4096 x 4096, 2 x 2 x 4096 x 3072 more weights.
  o = wflops("params --arch llama --kv-heads 32 --json");
  ASSERT_EQ(o.code, 0);
  EXPECT_DOUBLE_EQ(json_of(o)["weights_per_token"].get<double>(), 961544192.0 + 4 * 4096 * 3072.0);
  o = wflops("params --arch llama --ffn 11008 --json");  // Llama-2-7B's MLP: 3 x 4096 x 11008 per block
  ASSERT_EQ(o.code, 0);
  EXPECT_DOUBLE_EQ(json_of(o)["weights_per_token"].get<double>(), 2 * (41943040.0 + 3 * 4096 * 11008.0) + 525336576.0);
}

TEST(CliParams, ArchBadInputIsOneLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"params --arch gpt3", "--arch must be gpt2 or llama"},
      {"params --arch gpt2 --hidden 768", "does not split into 25 heads"},
      {"params --arch gpt2 --kv-heads 5", "--kv-heads applies to --arch llama"},
      {"params --arch gpt2 --ffn 6400", "--ffn applies to --arch llama"},
      {"params --arch llama --kv-heads 5", "must divide the 32 query heads"},
      {"params --arch llama --heads 0", "--heads must be a positive number"},
      {"params --arch llama --batch 1.5", "--batch must be a whole number"},
      {"params --arch gpt2 --experts 8", "do not apply to --arch presets"},
      {"params --hidden 768 --layers 12 --vocab 50257 --seq 1024 --heads 12", "give --arch gpt2 or --arch llama"},
  };
  for (const auto& [args, message] : cases) {
    const auto o = wflops(args, true);
    EXPECT_EQ(o.code, 1) << args;
    EXPECT_EQ(o.out.rfind("wflops: error: ", 0), 0u) << args << ": " << o.out;
    EXPECT_NE(o.out.find(message), std::string::npos) << args << ": " << o.out;
    EXPECT_EQ(o.out.find('\n'), o.out.size() - 1) << args << ": " << o.out;  // one line
  }
  // Without --arch the generic shape is still required in full.
  const auto missing = wflops("params --hidden 768 --layers 12 --vocab 50257", true);
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.out.find("a model needs --seq"), std::string::npos) << missing.out;
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
  EXPECT_EQ(wflops("budget --params 82e9 --tokens 150e9 --gpus 1024 --tflops 312 --results x.json --benchmark y").code,
            1);
  EXPECT_EQ(wflops("budget --params 82e9 --tokens 0 --gpus 8 --tflops 312").code, 1);
  EXPECT_EQ(wflops("budget --params 82e9 --tokens 1e9 --gpus 8 --tflops 312 --days 3").code, 1);
  const auto absent = wflops("budget --params 1e9 --tokens 1e9 --gpus 8 --results " + kData +
                                 "a100.json --benchmark matmul/wmma/bf16/m:4096/n:4096/k:4096",
                             true);
  EXPECT_EQ(absent.code, 1);
  EXPECT_NE(absent.out.find("failed"), std::string::npos) << absent.out;
  const auto bad_file =
      wflops("budget --params 1e9 --tokens 1e9 --gpus 8 --results " + kData + "malformed.json --benchmark x", true);
  EXPECT_EQ(bad_file.code, 1);
  EXPECT_NE(bad_file.out.find("malformed.json' is not valid JSON"), std::string::npos) << bad_file.out;
}

TEST(CliPlan, JsonKeys) {
  const auto o = wflops("plan --flops 1e21 --json");
  ASSERT_EQ(o.code, 0);
  const auto j = json_of(o);
  for (const char* key : {"params", "tokens", "loss"}) EXPECT_TRUE(j["dense"].contains(key)) << key;
  for (const char* part : {"continuous", "buildable"}) {
    for (const char* key : {"n_blocks", "d_model", "active_params", "total_params", "tokens", "loss", "flops"}) {
      EXPECT_TRUE(j["moe"][part].contains(key)) << part << " " << key;
    }
  }
  // At 1e21 FLOPs the continuous optimum is G = 16, n_blocks 37.179 (loss 2.266863); the best
  // whole model beside it n_blocks 37, d_model 2368 (loss 2.266866): the values of
  // test_planner.cpp's MoeOptimumAt1e21, from an mpmath root-finder.
  EXPECT_DOUBLE_EQ(j["moe"]["granularity"].get<double>(), 16.0);
  EXPECT_NEAR(j["moe"]["continuous"]["n_blocks"].get<double>(), 37.1793672245478, 37 * 1e-6);
  EXPECT_NEAR(j["moe"]["continuous"]["loss"].get<double>(), 2.266863024270475, 1e-12);
  EXPECT_EQ(j["moe"]["buildable"]["n_blocks"].get<int>(), 37);
  EXPECT_TRUE(j["moe"]["buildable"]["n_blocks"].is_number_integer());
  EXPECT_DOUBLE_EQ(j["moe"]["buildable"]["d_model"].get<double>(), 2368.0);
  EXPECT_NEAR(j["moe"]["buildable"]["loss"].get<double>(), 2.266866236376181, 1e-12);
  EXPECT_FALSE(j["moe"]["at_search_bound"].get<bool>());
  EXPECT_EQ(j["moe_by_granularity"].size(), 9u);
  // Against the continuous loss 23.25055; against the buildable one 23.24989.
  EXPECT_NEAR(j["dense_compute_multiplier"].get<double>(), 23.25055, 1e-4);
  EXPECT_NEAR(j["dense_compute_multiplier_buildable"].get<double>(), 23.24989, 1e-4);
  EXPECT_TRUE(j["time"].is_null());
}

TEST(CliPlan, TextShowsTheContinuousOptimumAndTheBuildableModel) {
  const auto o = wflops("plan --flops 1e21");
  ASSERT_EQ(o.code, 0);
  EXPECT_NE(o.out.find("continuous optimum: n_blocks 37.18, d_model 2379.5"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("buildable:          n_blocks 37, d_model 2368"), std::string::npos) << o.out;
}

TEST(CliPlan, BudgetFromGpusAndTimeSearch) {
  // 64 GPUs x 30 days at the file's dense tau (600 TFLOP/s): 600e12 x 64 x 30 x 86400 = 9.95328e22.
  const auto o = wflops("plan --gpus 64 --days 30 --results " + kData + "moe_h100.json --json");
  ASSERT_EQ(o.code, 0);
  const auto j = json_of(o);
  EXPECT_DOUBLE_EQ(j["budget_flops"].get<double>(), 9.95328e22);
  ASSERT_TRUE(j["time"].is_object());
  EXPECT_DOUBLE_EQ(j["time"]["gpu_hours"].get<double>(), 64 * 30 * 24.0);
  EXPECT_EQ(j["time"]["routing"], "expert_choice");
  EXPECT_EQ(j["time"]["granularities"].size(), 7u);
  // Finer experts win per FLOP, but their measured tau falls (580 at G = 1 to 150 at G = 64), so
  // in GPU time a coarser G wins. Continuous losses per FLOP at 9.95328e22 (mpmath script):
  // G = 16: 1.801385, 32: 1.798739, 64: 1.800640; in time (tau 450 at G = 8 ...): G = 4: 1.827642,
  // 8: 1.824123, 16: 1.830243.
  EXPECT_DOUBLE_EQ(j["time"]["flop_optimal_granularity"].get<double>(), 32.0);
  EXPECT_DOUBLE_EQ(j["time"]["time_optimal_granularity"].get<double>(), 8.0);
  EXPECT_NEAR(j["time"]["time_optimal"]["continuous"]["loss"].get<double>(), 1.824123042316293, 1e-12);
  EXPECT_EQ(j["time"]["time_optimal"]["continuous"]["tau"]["benchmark"],
            "moe_step/grouped/bf16/d:2048/E:64/G:8/tok:32768/route:expert_choice");
  EXPECT_EQ(j["time"]["benchmarks_used"].size(), 7u);  // the file's seven matching rows
  // Every model here has d_model 4400-6200 (n_blocks 69-97), over 2x the only measured d, 2048;
  // the worst is G = 1's FLOP-optimal continuous optimum, n_blocks 96.439, d_model 6172.1 (mpmath).
  ASSERT_EQ(j["notes"].size(), 1u);
  EXPECT_EQ(j["notes"][0],
            "G = 1, 2, 4, 8, 16, 32, 64: a planned model's d_model is over 2x from the nearest "
            "measured d (worst: 6172 priced at d = 2048); measure moe_step nearer that d for its tau");
}

// moe_h100.json plus rows that the fastest-per-G rule would have taken, none of which is the
// planned configuration, and one that is: see CliPlan.TimeSearchUsesTheMatchingRows.
std::string fixture_with_mismatched_rows() {
  std::ifstream src(kData + "moe_h100.json");
  nlohmann::json file = nlohmann::json::parse(src);
  const nlohmann::json templ = file["benchmarks"][2];  // a successful moe_step row
  const std::string pre = "moe_step/grouped/bf16/";
  std::vector<std::pair<std::string, double>> extra;
  for (int g : {1, 2, 4, 8, 16, 32, 64}) {
    extra.emplace_back(pre + "d:2048/E:64/G:" + std::to_string(g) + "/tok:32768/route:token_choice", 700.0);
  }
  extra.emplace_back(pre + "d:768/E:64/G:8/tok:32768/route:expert_choice", 590.0);
  extra.emplace_back(pre + "d:2048/E:64/G:8/tok:8192/route:expert_choice", 500.0);
  extra.emplace_back(pre + "d:4096/E:64/G:16/tok:32768/route:expert_choice", 300.0);
  for (const auto& [name, tflops] : extra) {
    nlohmann::json b = templ;
    b["name"] = b["run_name"] = name;
    b["tflops"] = tflops;
    const double d = name.find("d:768") != std::string::npos    ? 768
                     : name.find("d:4096") != std::string::npos ? 4096
                                                                : 2048;
    const double tok = name.find("tok:8192") != std::string::npos ? 8192 : 32768;
    b["flops"] = 6 * 8 * d * d * tok;  // the expert weight FLOPs the counter holds
    file["benchmarks"].push_back(b);
  }
  const auto path = std::filesystem::temp_directory_path() / "wflops_cli_plan_rows.json";
  std::ofstream(path) << file.dump(1);
  return path.string();
}

// The old rule (the fastest moe_step per G anywhere in the file) would price every G at the
// token-choice rows' 700 TFLOP/s, and G = 8 at 590 (d = 768) or 500 (tok 8192) with expert choice.
// The planned models (d around 5000 at this budget) take the expert-choice, E = 64 rows at the
// measured d nearest theirs and the largest token count: 450 at G = 8 (d = 2048), and at G = 16
// the d = 4096 row (300, slower than d = 2048's 360, but nearer 5000). Hand-checked against the
// mpmath script: G = 16 then has n* = 78.4505 and loss 1.842861 (with 360 it was 1.830243).
TEST(CliPlan, TimeSearchUsesTheMatchingRows) {
  const std::string path = fixture_with_mismatched_rows();
  const auto o = wflops("plan --gpus 64 --days 30 --results " + path + " --json");
  ASSERT_EQ(o.code, 0) << o.out;
  const auto t = json_of(o)["time"];
  ASSERT_EQ(t["granularities"].size(), 7u);
  const auto g8 = t["granularities"][3], g16 = t["granularities"][4];
  ASSERT_DOUBLE_EQ(g8["granularity"].get<double>(), 8.0);
  EXPECT_EQ(g8["measured"].size(), 2u);  // d = 768 and d = 2048
  EXPECT_EQ(g8["time_optimal"]["continuous"]["tau"]["benchmark"],
            "moe_step/grouped/bf16/d:2048/E:64/G:8/tok:32768/route:expert_choice");
  EXPECT_DOUBLE_EQ(g8["time_optimal"]["continuous"]["tau"]["tflops"].get<double>(), 450.0);
  EXPECT_NEAR(g8["time_optimal"]["continuous"]["loss"].get<double>(), 1.824123042316293, 1e-12);
  EXPECT_EQ(g8["flop_optimal"]["buildable"]["tau"]["d_model"].get<double>(), 2048.0);
  EXPECT_EQ(g16["time_optimal"]["continuous"]["tau"]["benchmark"],
            "moe_step/grouped/bf16/d:4096/E:64/G:16/tok:32768/route:expert_choice");
  EXPECT_NEAR(g16["time_optimal"]["continuous"]["n_blocks"].get<double>(), 78.4505182611, 78 * 1e-6);
  EXPECT_NEAR(g16["time_optimal"]["continuous"]["loss"].get<double>(), 1.842860607602973, 1e-12);
  EXPECT_DOUBLE_EQ(t["time_optimal_granularity"].get<double>(), 8.0);
  // G = 16's models (d_model 5000-5600) are within 2x of d = 4096; the others are not.
  ASSERT_EQ(json_of(o)["notes"].size(), 1u);
  EXPECT_EQ(json_of(o)["notes"][0].get<std::string>().rfind("G = 1, 2, 4, 8, 32, 64: ", 0), 0u) << json_of(o)["notes"];
  for (const auto& name : t["benchmarks_used"]) {
    const std::string s = name.get<std::string>();
    EXPECT_EQ(s.find("token_choice"), std::string::npos) << s;
    EXPECT_EQ(s.find("d:768"), std::string::npos) << s;
    EXPECT_EQ(s.find("tok:8192"), std::string::npos) << s;
  }
  // The text names the rows it used.
  const auto text = wflops("plan --gpus 64 --days 30 --results " + path);
  ASSERT_EQ(text.code, 0);
  EXPECT_NE(text.out.find("G = 16: moe_step/grouped/bf16/d:4096/E:64/G:16/tok:32768/route:expert_choice"),
            std::string::npos)
      << text.out;
  // With --route token_choice the token-choice rows are the planned configuration.
  const auto tc = wflops("plan --gpus 64 --days 30 --route token_choice --results " + path + " --json");
  ASSERT_EQ(tc.code, 0);
  const auto tt = json_of(tc)["time"];
  EXPECT_EQ(tt["routing"], "token_choice");
  EXPECT_DOUBLE_EQ(tt["granularities"][3]["time_optimal"]["continuous"]["tau"]["tflops"].get<double>(), 700.0);
  std::filesystem::remove(path);
}

TEST(CliPlan, Errors) {
  EXPECT_EQ(wflops("plan").code, 1);
  EXPECT_EQ(wflops("plan --gpus 8 --days 3").code, 1);
  EXPECT_EQ(wflops("plan --flops -1").code, 1);
  EXPECT_EQ(wflops("plan --flops 1e21 --days 3 --gpus 8").code, 1);
  EXPECT_EQ(wflops("plan --gpus 8 --days 3 --results " + kData + "not_wflops.json").code, 1);
  const auto route = wflops("plan --flops 1e21 --route top2", true);
  EXPECT_EQ(route.code, 1);
  EXPECT_NE(route.out.find("wflops: error: --route 'top2': expected expert_choice or token_choice"), std::string::npos)
      << route.out;
  // No rows with the planned E: the FLOP plan still runs, the time search is skipped with a note.
  const auto other_e = wflops("plan --gpus 64 --days 30 --experts 32 --results " + kData + "moe_h100.json --json");
  ASSERT_EQ(other_e.code, 0);
  const auto j = json_of(other_e);
  EXPECT_TRUE(j["time"].is_null());
  ASSERT_EQ(j["notes"].size(), 2u);
  EXPECT_NE(j["notes"][0].get<std::string>().find("E = 32"), std::string::npos) << j["notes"][0];
  // Budgets at both ends of the supported range still plan.
  EXPECT_EQ(wflops("plan --flops 1e17 --json").code, 0);
  EXPECT_EQ(wflops("plan --flops 1e27 --json").code, 0);
}

// Each bad input to plan: exit code 1 and one line, `wflops: error:` then the flag and what is
// wrong; nothing on stdout.
TEST(CliPlan, BadInputIsOneLineNamingTheFlag) {
  const std::pair<const char*, const char*> cases[] = {
      // Counts are whole and positive, and far below overflow.
      {"--gpus 8.5 --days 3 --tflops 400", "--gpus must be a whole number (got 8.5)"},
      {"--gpus 0 --days 3 --tflops 400", "--gpus must be a positive number"},
      {"--gpus 1e300 --days 3 --tflops 400", "--gpus 1e+300 is out of range (it must be at most 100000000)"},
      {"--flops 1e21 --experts 1.5", "--experts must be a whole number (got 1.5)"},
      {"--flops 1e21 --experts 0", "--experts must be a positive number"},
      {"--flops 1e21 --experts 1e300", "--experts 1e+300 is out of range (it must be at most 1000000)"},
      {"--flops 1e21 --granularity 4", "The following arguments were not expected:"},  // plan has no G to give
      // Quantities: positive, finite, in range.
      {"--gpus 8 --days -1 --tflops 400", "--days must be a positive number"},
      {"--gpus 8 --days 1e300 --tflops 400", "--days 1e+300 is out of range (it must be at most 1000000)"},
      {"--gpus 8 --days 3 --tflops 1e308", "--tflops 1e+308 is out of range (it must be at most 1000000)"},
      {"--flops nan", "--flops must be a positive number (got nan)"},
      {"--flops 1e300", "--flops 1e+300 is out of range (it must be at most 1e+40)"},
      // Budgets whose best model would sit on the search limit: no optimum to report.
      {"--flops 1",
       "--flops 1 is too small: even one block of d_model 64 (E = 64) is larger than compute-optimal; "
       "budgets from 2.3e+12 to 2.7e+39 FLOPs plan at E = 64"},
      {"--flops 1e40", "--flops 1e+40 is too large: the model would need over 100000 blocks"},
      {"--gpus 1 --days 1e-5 --tflops 1", "the budget of --gpus/--days, 8.6e+11 FLOPs, is too small"},
      {"--flops 1 --experts 8", "--flops 1 is too small: even one block of d_model 64 (E = 8)"},
      // Flags the mode would ignore.
      {"--flops 1e21 --tflops 400", "--tflops converts --gpus/--days into FLOPs; with --flops F it would be unused"},
      {"--flops 1e21 --gpus 8", "--gpus goes with --days X; with --flops F the budget is already given"},
      {"--flops 1e21 --route token_choice", "--route picks the moe_step rows of --results FILE"},
  };
  for (const auto& [args, message] : cases) {
    const auto o = wflops(std::string("plan ") + args, true);
    EXPECT_EQ(o.code, 1) << args;
    EXPECT_EQ(o.out.rfind(std::string("wflops: error: ") + message, 0), 0u) << args << "\n" << o.out;
    EXPECT_EQ(o.out.find('\n'), o.out.size() - 1) << args << "\n" << o.out;  // one line
  }
  EXPECT_NE(wflops("plan --flops 1e21 --granularity 4", true).out.find("--granularity"), std::string::npos);
  // The range the message gives is the range that plans: its ends plan, just outside does not.
  EXPECT_EQ(wflops("plan --flops 2.3e12 --json").code, 0);
  EXPECT_EQ(wflops("plan --flops 2.2e12 --json").code, 1);
  EXPECT_EQ(wflops("plan --flops 2.7e39 --json").code, 0);
  EXPECT_EQ(wflops("plan --flops 2.8e39 --json").code, 1);
  // Whole counts and in-range values still plan, as do --tflops and --results together (the
  // budget from --tflops, the search in time from the file).
  EXPECT_EQ(wflops("plan --gpus 8 --days 0.5 --tflops 312.5 --experts 8 --json").code, 0);
  const auto both = wflops("plan --gpus 64 --days 30 --tflops 400 --results " + kData + "moe_h100.json --json");
  ASSERT_EQ(both.code, 0);
  EXPECT_DOUBLE_EQ(json_of(both)["budget_flops"].get<double>(), 400e12 * 64 * 30 * 86400);
  EXPECT_TRUE(json_of(both)["time"].is_object());
}

TEST(CliCompare, FormatsAndErrors) {
  const std::string files = kData + "a100.json " + kData + "h100.json";
  auto o = wflops("compare " + files + " --format json");
  ASSERT_EQ(o.code, 0);
  const auto j = json_of(o);
  for (const char* key : {"files", "benchmarks", "only_in_some", "warnings", "cluster"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
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
