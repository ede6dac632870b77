// The `wflops` program as a user meets it, on a machine without a GPU.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cuda/device_info.hpp"
#include "program_run.hpp"

namespace {

wflops::testing::ProgramRun run(const std::string& args) { return wflops::testing::run_wflops(args); }

std::string json_part(const std::string& out) { return out.substr(out.find_first_of("[{")); }

bool have_gpu() { return wflops::gpu_unavailable_reason().empty(); }

}  // namespace

TEST(Cli, RunWithoutGpuSaysSoExitsTwoAndWritesNothing) {
  if (have_gpu()) GTEST_SKIP() << "this machine has a GPU: run would measure, not refuse";
  const auto dir = std::filesystem::temp_directory_path() / ("wflops-cli-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const auto r = run("run --suite quick --results-dir " + dir.string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("no usable GPU"), std::string::npos) << r.out;
  // One clear line naming the cause.
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir)) << "nothing may be written without a GPU";
}

TEST(Cli, BadArgumentsGiveAClearErrorAndNonZeroExit) {
  auto r = run("run --suite nosuchsuite");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("unknown suite 'nosuchsuite'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mlp, model, moe, quick, seed"), std::string::npos) << "names the suites there are: " << r.out;
  r = run("list --suite nosuchsuite");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("unknown suite 'nosuchsuite' (suites: attention, cast, full"), std::string::npos) << r.out;
  r = run("run --frobnicate");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("--frobnicate"), std::string::npos) << r.out;
  r = run("list --gpu nosuchgpu");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("unknown GPU 'nosuchgpu'"), std::string::npos) << r.out;
  r = run("run --peak bf16=fast");
  EXPECT_NE(r.code, 0);
  r = run("");
  EXPECT_NE(r.code, 0) << "a subcommand is required";
  r = run("nosuchcommand");
  EXPECT_NE(r.code, 0);
}

TEST(Cli, ListJsonCountsFlopsAsRunDoes) {
  const auto r = run("list --json --gpu h100-sxm");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto list = nlohmann::json::parse(json_part(r.out));
  ASSERT_TRUE(list.is_array());
  EXPECT_GT(list.size(), 100u);
  bool found = false;
  for (const auto& b : list) {
    for (const char* key : {"name", "dtype", "flops", "bytes", "min_time_s"}) ASSERT_TRUE(b.contains(key)) << key;
    if (b["name"] == "matmul/cublaslt_auto/bf16/m:4096/n:8192/k:4096") {
      found = true;
      EXPECT_DOUBLE_EQ(b["flops"].get<double>(), 274877906944.0);  // 2 * 4096 * 8192 * 4096
      EXPECT_DOUBLE_EQ(b["bytes"].get<double>(), 160.0 * 1024 * 1024);
      // at 989 TFLOP/s: 2^38 / 989e12 = 277.9 us (compute bound: 168 MB / 3.35 TB/s is 50 us)
      EXPECT_NEAR(b["min_time_s"].get<double>(), 277.94e-6, 0.01e-6);
      EXPECT_EQ(b["dtype"], "bf16");
    }
  }
  EXPECT_TRUE(found);
}

TEST(Cli, ListSuitesAndGpusWithoutADtype) {
  auto r = run("list --json --suite quick --gpu a100-sxm4-80gb");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto quick = nlohmann::json::parse(json_part(r.out));
  EXPECT_GT(quick.size(), 10u);
  EXPECT_LT(quick.size(), 80u) << "the quick suite must stay quick";
  for (const auto& b : quick) {
    if (b["dtype"] == "fp8") {
      EXPECT_TRUE(b["min_time_s"].is_null()) << "A100 has no fp8";
    } else {
      EXPECT_GT(b["min_time_s"].get<double>(), 0);
    }
  }
  r = run("list --suite quick");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("matmul/wmma/bf16/m:4096/n:8192/k:4096"), std::string::npos);
}

TEST(Cli, PeaksTableAndJson) {
  auto r = run("peaks");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("h100-sxm"), std::string::npos);
  r = run("peaks --json");
  ASSERT_EQ(r.code, 0);
  const auto peaks = nlohmann::json::parse(json_part(r.out));
  bool found = false;
  for (const auto& p : peaks) {
    if (p["slug"] == "a100-sxm4-80gb") {
      found = true;
      EXPECT_EQ(p["tflops"]["bf16"], 312);
      EXPECT_TRUE(p["tflops"]["fp8"].is_null());
    }
  }
  EXPECT_TRUE(found);
}
