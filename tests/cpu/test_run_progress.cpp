// `wflops run`'s progress: the count and estimate it starts with, "[i/N]" on every row and the time
// left on a terminal, one row per benchmark with repetitions, and a result file without any of it.
// The runs use the test-only hook WFLOPS_TEST_FAKE_RUN (src/cli/run_test_hook.hpp): fake CPU
// benchmarks, no GPU.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "all_benchmarks.hpp"
#include "model/peaks.hpp"
#include "program_run.hpp"
#include "registry.hpp"
#include "results/result_reporter.hpp"
#include "run_progress.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
using namespace wflops;

using wflops::testing::FakeRun;
using wflops::testing::fresh_dir;

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

// The lines of `text` that hold `what`.
std::vector<std::string> lines_with(const std::string& text, const std::string& what) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    if (line.find(what) != std::string::npos) out.push_back(line);
    start = end + 1;
  }
  return out;
}

std::string fake(int i) { return "fake/cpu/fp32/i:" + std::to_string(i); }

BenchSpec spec(const std::string& family, DType dtype, double flops, double bytes) {
  BenchSpec s(family, "x", dtype, "n:1");
  s.flops = flops;
  s.bytes = bytes;
  return s;
}

}  // namespace

TEST(RunProgress, RepetitionSettingsAreTheLastFlagsGiven) {
  const auto s = repetition_settings(
      {"wflops", "--benchmark_repetitions=3", "--benchmark_min_time=0.2", "--benchmark_repetitions=10"});
  EXPECT_EQ(s.repetitions, 10);
  EXPECT_DOUBLE_EQ(s.min_time_s, 0.2);
  // Without the flags: Google Benchmark's own defaults, one repetition of 0.5 s.
  const auto d = repetition_settings({"wflops"});
  EXPECT_EQ(d.repetitions, 1);
  EXPECT_DOUBLE_EQ(d.min_time_s, 0.5);
}

TEST(RunProgress, EstimatesFromTheLeastTimeAndTheRepetitions) {
  const Peaks h100 = *peaks_by_slug("h100-sxm");
  const RepetitionSettings five{5, 0.5};
  // 989e12 bf16 FLOPs take at least 1 s at the 989 TFLOP/s peak; at half the peak an iteration is
  // 2 s, longer than the repetition's 0.5 s, so it runs once per repetition: 1 + 5 x 2 = 11 s.
  const BenchSpec big = spec("matmul", DType::bf16, 989e12, 0);
  EXPECT_DOUBLE_EQ(*least_time_s(big, h100), 1.0);
  EXPECT_DOUBLE_EQ(estimated_seconds(big, h100, five), 11.0);
  // A short one is repeated for the repetition's least time: 1 + 5 x 1.5 x 0.5 = 4.75 s.
  EXPECT_DOUBLE_EQ(estimated_seconds(spec("matmul", DType::bf16, 1e9, 0), h100, five), 4.75);
  // Memory-bound: 3.35e9 bytes take at least 1 ms at 3350 GB/s.
  EXPECT_DOUBLE_EQ(*least_time_s(spec("cast", DType::bf16, 0, 3.35e9), h100), 1e-3);
  // A step with a time split times 9 iterations more: 1 + 5 x 2 + 9 x 2 = 29 s.
  EXPECT_DOUBLE_EQ(estimated_seconds(spec("mlp_step", DType::bf16, 989e12, 0), h100, five), 29.0);
  // So do the MoE layer and the whole model step (its phases, docs/model.md).
  EXPECT_DOUBLE_EQ(estimated_seconds(spec("moe_step", DType::bf16, 989e12, 0), h100, five), 29.0);
  EXPECT_DOUBLE_EQ(estimated_seconds(spec("model_step", DType::bf16, 989e12, 0), h100, five), 29.0);
  // A GPU without the dtype has no least time (the benchmark is not run there).
  EXPECT_FALSE(least_time_s(spec("matmul", DType::fp8_e4m3, 1e9, 0), *peaks_by_slug("a100-sxm4-80gb")).has_value());
}

TEST(RunProgress, TheQuickSuiteIsEstimatedAtMinutes) {
  // The quick suite is meant to take minutes on an H100: the estimate says so, with its own
  // defaults (3 repetitions of 0.2 s).
  Registry registry;
  register_all_benchmarks(registry);
  const Peaks h100 = *peaks_by_slug("h100-sxm");
  double total = 0;
  for (const BenchSpec* s : runnable_benchmarks(registry.suite("quick"), h100)) {
    total += estimated_seconds(*s, h100, RepetitionSettings{3, 0.2});
  }
  EXPECT_GT(total, 60.0);
  EXPECT_LT(total, 15 * 60.0);
}

TEST(RunProgress, ListSaysTheSuitesEstimate) {
  // The same estimate a run of the suite starts with, with the suite's own repetitions.
  auto r = wflops::testing::run_wflops("list --suite quick");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("a run of it: about [0-9]+ min on h100-sxm by estimate \\(3 "
                                                  "repetitions of at least 0.2 s each\\)")))
      << r.out;
  r = wflops::testing::run_wflops("list --suite model --gpu h200");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("on h200 by estimate (5 repetitions of at least 0.5 s each)"), std::string::npos) << r.out;
}

TEST(RunProgress, TheFilterSelectsAsGoogleBenchmarkDoes) {
  std::vector<BenchSpec> specs;
  // fake(i): "fake/cpu/fp32/i:<i>", the test hook's names.
  for (int i = 0; i < 4; ++i) specs.emplace_back("fake", "cpu", DType::fp32, "i:" + std::to_string(i));
  std::vector<const BenchSpec*> all;
  for (const auto& s : specs) all.push_back(&s);
  const auto names = [&](const std::vector<std::string>& flags) {
    std::vector<std::string> out;
    for (const BenchSpec* s : filtered(all, flags)) out.push_back(s->name);
    return out;
  };
  EXPECT_EQ(names({}).size(), 4u);
  EXPECT_EQ(names({"--benchmark_filter=all"}).size(), 4u);
  EXPECT_EQ(names({"--benchmark_filter=i:[13]"}), (std::vector<std::string>{fake(1), fake(3)}));
  EXPECT_EQ(names({"--benchmark_filter=i:1", "--benchmark_filter=-i:[12]"}),
            (std::vector<std::string>{fake(0), fake(3)}));
  // Google Benchmark matches the name it registers, which ends in "/manual_time".
  EXPECT_TRUE(names({"--benchmark_filter=i:0$"}).empty());
  EXPECT_EQ(names({"--benchmark_filter=i:0/manual_time$"}), (std::vector<std::string>{fake(0)}));
}

TEST(RunProgress, DurationsForPeople) {
  EXPECT_EQ(duration_text(0.2), "1 s");
  EXPECT_EQ(duration_text(42.4), "42 s");
  EXPECT_EQ(duration_text(90), "2 min");
  EXPECT_EQ(duration_text(3600), "1 h 00 min");
  EXPECT_EQ(duration_text(7500), "2 h 05 min");
  EXPECT_EQ(duration_text(-1), "?");
  EXPECT_EQ(run_plan_line(60, RepetitionSettings{3, 0.2}, 330),
            "60 benchmarks to run, 3 repetitions of at least 0.2 s each: about 6 min by estimate");
}

TEST(RunProgress, RowsCountOnFromWhatIsSettledAndScaleTheTimeLeft) {
  using Clock = RunProgress::Clock;
  const Clock::time_point start{};
  // a was measured by an earlier process; b and c are estimated at 20 and 30 s.
  RunProgress p({{"a", 10}, {"b", 20}, {"c", 30}}, {"a"}, true, start);
  EXPECT_EQ(p.total(), 3);
  EXPECT_EQ(p.heading(), std::string(6, ' '));
  // b took 40 s against its 20: twice the estimate, so c's 30 s are 60 s.
  const auto b = p.row("b", start + std::chrono::seconds(40));
  EXPECT_EQ(b.first, "[2/3] ");
  EXPECT_EQ(b.second, "  about 1 min left");
  // The last row has nothing left to say.
  EXPECT_EQ(p.row("c", start + std::chrono::seconds(80)), (std::pair<std::string, std::string>{"[3/3] ", ""}));
  // Not on a terminal: the count only. Ten and more benchmarks pad the count.
  std::vector<std::pair<std::string, double>> many;
  for (int i = 0; i < 12; ++i) many.emplace_back(fake(i), 1.0);
  RunProgress q(many, {}, false, start);
  EXPECT_EQ(q.row(fake(0), start + std::chrono::seconds(5)), (std::pair<std::string, std::string>{"[ 1/12] ", ""}));
}

// A benchmark with repetitions reaches the reporter in two calls (its repetitions, then their
// aggregates): one row, the median's, and the median, not the first repetition, is the matmul
// ceiling later benchmarks are read against.
TEST(RunProgress, RepetitionsAndTheirAggregatesAreOneRow) {
  using Run = benchmark::BenchmarkReporter::Run;
  const auto dir = fresh_dir("two-calls");
  const std::string matmul = "matmul/cublas/bf16/m:1/n:1/k:1";
  const std::string step = "mlp_step/linear/bf16/d:1/ff:1/tok:1";
  auto run = [](const std::string& name, double tflops, int repetition) {
    Run r = wflops::testing::timed_run(name, tflops, 10, 0.01);
    r.repetitions = 3;
    r.repetition_index = repetition;
    r.counters["flops"] = 1e12;
    return r;
  };
  auto aggregate = [&](const std::string& name, const char* which, double tflops) {
    Run r = run(name, tflops, 0);
    r.run_type = Run::RT_Aggregate;
    r.aggregate_name = which;
    r.iterations = 3;
    return r;
  };
  const auto table_path = dir / "table.txt";
  std::FILE* table = std::fopen(table_path.c_str(), "w");
  ASSERT_NE(table, nullptr);
  {
    ResultReporter rep(dir / "r.json", {{"source", "wflops"}, {"gpu_name", "H100"}}, table);
    int rows = 0;
    rep.set_table_progress({"      ", [&rows](const std::string&) {
                              ++rows;
                              return std::pair<std::string, std::string>{"[" + std::to_string(rows) + "/2] ", ""};
                            }});
    ASSERT_TRUE(rep.ReportContext(benchmark::BenchmarkReporter::Context()));
    // The first repetition (800) is the fastest; the median is 700.
    rep.ReportRuns({run(matmul, 800, 0), run(matmul, 700, 1), run(matmul, 600, 2)});
    EXPECT_TRUE(rep.pending());
    EXPECT_EQ(rows, 0) << "no row before the aggregates";
    rep.ReportRuns({aggregate(matmul, "mean", 700), aggregate(matmul, "median", 700), aggregate(matmul, "stddev", 100),
                    aggregate(matmul, "cv", 1.0 / 7)});
    EXPECT_FALSE(rep.pending());
    EXPECT_EQ(rows, 1);
    rep.ReportRuns({run(step, 350, 0), run(step, 360, 1), run(step, 340, 2)});
    rep.ReportRuns({aggregate(step, "median", 350)});
    EXPECT_EQ(rows, 2);
    rep.Finalize();
    const nlohmann::json doc = rep.document();
    ASSERT_EQ(doc["benchmarks"].size(), 11u) << "every run and aggregate is in the file, once";
    for (const auto& b : doc["benchmarks"]) {
      if (b["run_name"] != step) continue;
      if (b.value("aggregate_name", "") == "median") {
        // Against the matmul's median 700, not its first repetition's 800.
        EXPECT_DOUBLE_EQ(b["pct_best_gemm"].get<double>(), 50.0);
      }
    }
    EXPECT_DOUBLE_EQ(doc["summary"]["matmul_max_tflops"]["bf16"]["tflops"].get<double>(), 700.0);
  }
  std::fclose(table);
  const std::string printed = slurp(table_path);
  EXPECT_EQ(lines_with(printed, step).size(), 1u) << printed;
  EXPECT_NE(printed.find("[1/2] " + matmul + " "), std::string::npos) << printed;
  EXPECT_NE(printed.find("[2/2] " + step + " "), std::string::npos) << printed;
  // The median's row: 700.0 TFLOP/s.
  ASSERT_EQ(lines_with(printed, matmul).size(), 1u);
  EXPECT_NE(lines_with(printed, matmul)[0].find("700.0"), std::string::npos) << printed;
  EXPECT_EQ(lines_with(printed, "      benchmark").size(), 1u) << "the heading is as wide as the rows:\n" << printed;
  fs::remove_all(dir);
}

TEST(RunProgress, ARunSaysWhatItWillRunAndCountsItsRows) {
  const auto dir = fresh_dir("run-progress");
  const auto path = dir / "r.json";
  const FakeRun hook("count=4");
  const auto r = wflops::testing::run_wflops("run --out " + path.string() +
                                             " --suite quick --benchmark_min_time=0.01 --benchmark_filter=i:[013]");
  ASSERT_EQ(r.code, 0) << r.out;
  // First line: how many, how repeated, how long (1 s set-up + 3 x 1.5 x 0.01 s each, three times).
  EXPECT_EQ(r.out.rfind("3 benchmarks to run, 3 repetitions of at least 0.01 s each: about 3 s by estimate\n", 0), 0u)
      << r.out;
  // One row per benchmark, numbered in run order; not a terminal, so no time left.
  const std::vector<std::string> expected = {"[1/3] " + fake(0), "[2/3] " + fake(1), "[3/3] " + fake(3)};
  std::size_t last = 0;
  for (const auto& row : expected) {
    EXPECT_EQ(count(r.out, row + " "), 1u) << r.out;
    const auto at = r.out.find(row + " ");
    EXPECT_GT(at, last) << r.out;
    last = at;
  }
  EXPECT_EQ(count(r.out, "fake/cpu/fp32/i:"), 3u) << "one row per benchmark, not one per call:\n" << r.out;
  EXPECT_EQ(r.out.find("left"), std::string::npos) << r.out;
  // The result file carries none of it.
  const std::string file = slurp(path);
  EXPECT_EQ(file.find("[1/3]"), std::string::npos);
  EXPECT_EQ(file.find("by estimate"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(file)["benchmarks"].size(), 3u * 7u) << "3 repetitions and 4 aggregates each";
  fs::remove_all(dir);
}

TEST(RunProgress, ACrashDoesNotLoseTheCount) {
  const auto dir = fresh_dir("run-progress-crash");
  const FakeRun hook("count=4,segv=1");
  const std::string out = (dir / "r.json").string();
  const auto r = wflops::testing::run_wflops("run --out " + out + " --suite quick --benchmark_min_time=0.01");
  EXPECT_EQ(r.code, 1) << r.out;
  // The dead benchmark's row comes from the parent, the rest from two workers: 1 to 4 all the same.
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(count(r.out, "[" + std::to_string(i + 1) + "/4] " + fake(i) + " "), 1u) << r.out;
  }
  fs::remove_all(dir);
}

TEST(RunProgress, OnATerminalRowsSayTheTimeLeft) {
  if (std::system("command -v script >/dev/null 2>&1") != 0) GTEST_SKIP() << "no script(1) to give a terminal";
  const auto dir = fresh_dir("run-progress-tty");
  const auto out = dir / "out.txt";
  const FakeRun hook("count=3");
  // script(1) runs the program on a pseudo-terminal, as a person's shell would.
  const std::string command = std::string(WFLOPS_BINARY) + " run --out " + (dir / "r.json").string() +
                              " --suite quick --benchmark_min_time=0.01";
  const int status = std::system(("script -qec '" + command + "' /dev/null >" + out.string() + " 2>&1").c_str());
  EXPECT_EQ(status, 0);
  const std::string printed = slurp(out);
  const std::regex left(R"(\[1/3\] fake/cpu/fp32/i:0 .*  about \d+ (s|min) left)");
  EXPECT_TRUE(std::regex_search(printed, left)) << printed;
  ASSERT_EQ(lines_with(printed, "[3/3] ").size(), 1u) << printed;
  EXPECT_EQ(lines_with(printed, "[3/3] ")[0].find("left"), std::string::npos) << "nothing is left after the last";
  EXPECT_EQ(slurp(dir / "r.json").find("left"), std::string::npos);
  fs::remove_all(dir);
}

TEST(RunProgress, AFilterThatSelectsNothingIsRefusedBeforeTheGpu) {
  // No hook: the real suite, on any machine (with a GPU or without): bad input, exit 1, not 2.
  const auto dir = fresh_dir("run-filter-none");
  const auto r = wflops::testing::run_wflops("run --results-dir " + dir.string() +
                                             " --suite quick --benchmark_filter=nothing_has_this_name");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(r.out.rfind("wflops: error: no benchmark of suite 'quick' matches the --benchmark_filter given\n", 0), 0u)
      << r.out;
  EXPECT_TRUE(fs::is_empty(dir)) << "nothing is written";
  fs::remove_all(dir);
}
