// The moe_step registrations: names, suites, FLOP counts, refused configurations, and a result
// file with these names read by the planner's measured_tau (the tau(G) curve it plans with).
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "bench_families.hpp"
#include "cuda/moe_layer.hpp"
#include "model/flops.hpp"
#include "model/planner.hpp"
#include "moe_bench.hpp"
#include "results/result_reader.hpp"

namespace {

using namespace wflops;

TEST(MoeBench, Registrations) {
  Registry r;
  add_moe_benchmarks(r);
  const BenchSpec* g8 = r.find("moe_step/grouped/bf16/d:2048/E:64/G:8/tok:32768/route:expert_choice");
  ASSERT_NE(g8, nullptr);
  EXPECT_EQ(g8->family, "moe_step");
  EXPECT_TRUE(g8->suites.count("quick") && g8->suites.count("moe"));
  EXPECT_DOUBLE_EQ(g8->flops, 6597069766656.0);  // 6 * 8 * 2048^2 * 32768
  EXPECT_DOUBLE_EQ(g8->counters.at("routing_flops"), 2048.0 * 512 * 14 * 32768);
  // The memory-bound parts' least bytes (test_flops_moe.cpp), turned into phase_gbps_<part> by the harness.
  EXPECT_DOUBLE_EQ(g8->counters.at("phase_bytes_combine"), 1207959552.0);
  EXPECT_DOUBLE_EQ(g8->counters.at("phase_bytes_combine_bwd"), 2281701376.0);
  EXPECT_DOUBLE_EQ(g8->counters.at("phase_bytes_permute_bwd"), 1207959552.0);
  EXPECT_EQ(g8->counters.count("phase_bytes_permute"), 0u) << "the permute part also sorts";
  EXPECT_NE(r.find("moe_step/loop/bf16/d:2048/E:64/G:64/tok:32768/route:expert_choice"), nullptr);
  EXPECT_NE(r.find("moe_step/padded/bf16/d:2048/E:64/G:1/tok:32768/route:expert_choice"), nullptr);
  EXPECT_NE(r.find("moe_step/grouped/bf16/d:2048/E:64/G:16/tok:32768/route:token_choice"), nullptr);
  EXPECT_NE(r.find("moe_step/grouped/bf16/d:2048/E:64/G:4/tok:65536/route:expert_choice"), nullptr);
  EXPECT_EQ(r.find("moe_step/padded/bf16/d:2048/E:64/G:1/tok:32768/route:token_choice"), nullptr);
  // Our grouped GEMM: every G, both routings, in the moe and full suites; G = 8 expert choice is quick.
  for (long g : {1L, 2L, 4L, 8L, 16L, 32L, 64L}) {
    for (const char* route : {"expert_choice", "token_choice"}) {
      const std::string name = fmt::format("moe_step/ours_grouped/bf16/d:2048/E:64/G:{}/tok:32768/route:{}", g, route);
      const BenchSpec* ours = r.find(name);
      ASSERT_NE(ours, nullptr) << name;
      EXPECT_EQ(ours->impl, "ours_grouped");
      EXPECT_TRUE(ours->suites.count("moe") && ours->suites.count("full")) << name;
      EXPECT_EQ(ours->suites.count("quick"), g == 8 && std::string(route) == "expert_choice" ? 1u : 0u) << name;
      EXPECT_DOUBLE_EQ(ours->flops, 6.0 * 8 * 2048.0 * 2048 * 32768);
      EXPECT_FALSE(ours->baseline.empty());
    }
  }
  int quick = 0;
  for (const BenchSpec* s : r.suite("quick")) quick += s->family == "moe_step";
  EXPECT_EQ(quick, 3);
  // Grouped expert choice: 3 d x 3 E x 2 T (+ 64k tokens at d = 2048, E = 64) x 7 G = 133; loop and
  // padded 14; token choice grouped and loop 14; ours_grouped 7 G x 2 routings = 14.
  int moe = 0;
  for (const BenchSpec* s : r.suite("moe")) moe += s->family == "moe_step";
  EXPECT_EQ(moe, 175);
}

TEST(MoeBench, RefusesBadConfigurations) {
  // 4d/G = 100 with G = 4: not a multiple of 8
  MoeConfig c = moe_config(100, 8, 4, 8192, moe::Routing::expert_choice, MoeGemmImpl::grouped);
  EXPECT_NE(moe_unsupported_reason(c).find("multiple of 8"), std::string::npos);
  try {
    MoeLayerWorkload w(c);
    FAIL() << "constructed an unsupported configuration";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of 8"), std::string::npos);
  }
  c.d = 2048;
  c.granularity = 8;
  EXPECT_EQ(moe_unsupported_reason(c), "");
  c.routing = moe::Routing::token_choice;
  c.impl = MoeGemmImpl::padded;
  EXPECT_NE(moe_unsupported_reason(c).find("expert choice only"), std::string::npos);
  c.impl = MoeGemmImpl::grouped;
  c.tokens = 1000;  // token choice takes any token count
  EXPECT_EQ(moe_unsupported_reason(c), "");
  c.routing = moe::Routing::expert_choice;
  EXPECT_NE(moe_unsupported_reason(c).find("multiple of 256"), std::string::npos);
  // Our grouped GEMM runs both routings (token choice with no host sync).
  c.impl = MoeGemmImpl::ours;
  c.tokens = 8192;
  EXPECT_EQ(moe_unsupported_reason(c), "");
  c.routing = moe::Routing::token_choice;
  EXPECT_EQ(moe_unsupported_reason(c), "");
  EXPECT_EQ(moe_gemm_impl_name(MoeGemmImpl::ours), "ours_grouped");
}

// Token choice waits for the counts on the host with cuBLAS's grouped GEMM, never with ours (which
// reads the expert offsets on the device); expert choice never does. (No GPU needed: the workload's
// constructor only sizes its buffers.)
TEST(MoeBench, OnlyHostSizedTokenChoiceSynchronises) {
  MoeConfig c = moe_config(64, 2, 2, 256, moe::Routing::token_choice, MoeGemmImpl::grouped);
  EXPECT_TRUE(MoeLayerWorkload(c).synchronizes());
  c.impl = MoeGemmImpl::ours;
  EXPECT_FALSE(MoeLayerWorkload(c).synchronizes());
  c.routing = moe::Routing::expert_choice;
  EXPECT_FALSE(MoeLayerWorkload(c).synchronizes());
}

// A result file holding this family's benchmark names (as `wflops run` would write them) goes
// through the planner: tau(G) per G, read as expert-weight FLOP/s.
TEST(MoeBench, PlannerReadsTheCurve) {
  Registry r;
  add_moe_benchmarks(r);
  std::ifstream src(WFLOPS_SOURCE_DIR "/tests/data/moe_h100.json");
  nlohmann::json file = nlohmann::json::parse(src);
  const nlohmann::json dense = file["benchmarks"][0];  // an mlp_step result
  nlohmann::json templ;                                // the first moe_step result (a successful one)
  for (const auto& b : file["benchmarks"]) {
    if (templ.is_null() && b["name"].get<std::string>().rfind("moe_step/", 0) == 0) templ = b;
  }
  ASSERT_FALSE(templ.contains("error_occurred"));
  ASSERT_FALSE(templ.is_null());
  file["benchmarks"] = nlohmann::json::array({dense});
  std::map<double, double> want;
  for (const BenchSpec& s : r.all()) {
    if (s.impl != "grouped" || s.shape.find("d:2048/E:64/") != 0 ||
        s.shape.find("tok:32768/route:expert_choice") == std::string::npos) {
      continue;
    }
    nlohmann::json b = templ;
    const double g = std::stod(s.shape.substr(s.shape.find("G:") + 2));
    b["name"] = b["run_name"] = s.name;
    b["flops"] = s.flops;
    b["tflops"] = 600.0 - 5 * g;
    want[g] = 600.0 - 5 * g;
    file["benchmarks"].push_back(b);
  }
  ASSERT_EQ(want.size(), 7u);
  const auto path = std::filesystem::temp_directory_path() / "wflops_moe_planner_test.json";
  std::ofstream(path) << file.dump(1);
  const planner::MeasuredTau m = planner::measured_tau(read_result_file(path), 64, "");
  std::filesystem::remove(path);
  ASSERT_EQ(m.moe.size(), 7u);
  for (const auto& t : m.moe) EXPECT_DOUBLE_EQ(t.tflops, want.at(t.granularity)) << t.benchmark;
  EXPECT_TRUE(m.notes.empty());
}

}  // namespace
