// `wflops run` when a benchmark takes its process down: that benchmark gets the error, a fresh
// worker process runs the rest into the same result file, and a SIGTERM reaches the worker. There
// is no GPU here: the test-only hook WFLOPS_TEST_FAKE_RUN (src/cli/run_test_hook.hpp) makes the
// workers run fake CPU benchmarks that crash where the test asks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "program_run.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;

using wflops::testing::FakeRun;
using wflops::testing::fresh_dir;
using wflops::testing::read_json;

std::string fake(int i) { return "fake/cpu/fp32/i:" + std::to_string(i); }

// run_name -> that benchmark's entries, in file order; and the order in which names first appear.
struct Entries {
  std::map<std::string, std::vector<nlohmann::json>> by_name;
  std::vector<std::string> order;
};

Entries entries_of(const nlohmann::json& doc) {
  Entries e;
  for (const auto& b : doc["benchmarks"]) {
    const std::string name = b["run_name"].get<std::string>();
    if (!e.by_name.count(name)) e.order.push_back(name);
    e.by_name[name].push_back(b);
  }
  return e;
}

// A benchmark that ran to the end: its 3 repetitions and Google Benchmark's aggregates, unchanged.
void expect_measured(const Entries& e, const std::string& name) {
  ASSERT_TRUE(e.by_name.count(name)) << name << " is missing";
  const auto& runs = e.by_name.at(name);
  int iterations = 0;
  std::vector<std::string> aggregates;
  for (const auto& r : runs) {
    EXPECT_FALSE(r.value("error_occurred", false)) << name << ": " << r.dump();
    if (r["run_type"] == "iteration") {
      ++iterations;
      EXPECT_EQ(r["repetitions"], 3) << name;
      EXPECT_GT(r["tflops"].get<double>(), 0) << name;
    } else {
      aggregates.push_back(r["aggregate_name"].get<std::string>());
    }
  }
  EXPECT_EQ(iterations, 3) << name;
  EXPECT_EQ(aggregates, (std::vector<std::string>{"mean", "median", "stddev", "cv"})) << name;
}

std::string error_of(const Entries& e, const std::string& name) {
  if (!e.by_name.count(name)) return "(missing)";
  const auto& runs = e.by_name.at(name);
  if (runs.size() != 1 || !runs[0].value("error_occurred", false)) return "(not one error entry)";
  return runs[0]["error_message"].get<std::string>();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

const char* kQuickFlags = " --suite quick --benchmark_min_time=0.01";

// `wflops run --out DIR/r.json` of the quick suite, with the fake benchmarks `hook` asks for, in a
// fresh folder named after `name`.
struct FileRun {
  fs::path dir;
  fs::path path;
  wflops::testing::ProgramRun r;
};

FileRun run_into_file(const std::string& name, const std::string& hook, const std::string& more_flags = "") {
  FileRun f;
  f.dir = fresh_dir(name);
  f.path = f.dir / "r.json";
  const FakeRun set(hook);
  f.r = wflops::testing::run_wflops("run --out " + f.path.string() + kQuickFlags + more_flags);
  return f;
}

// A run (run_into_file) of two fake benchmarks that both ran to the end: exit code 0, and a complete
// file with both measured, in order. Returns what the run printed, for the caller's own checks.
std::string run_both_to_the_end(const std::string& name, const std::string& hook) {
  const auto& [dir, path, r] = run_into_file(name, hook);
  EXPECT_EQ(r.code, 0) << r.out;
  const auto doc = read_json(path);
  EXPECT_EQ(doc["context"]["interrupted"], false);
  const Entries e = entries_of(doc);
  EXPECT_EQ(e.order, (std::vector<std::string>{fake(0), fake(1)}));
  expect_measured(e, fake(0));
  expect_measured(e, fake(1));
  fs::remove_all(dir);
  return r.out;
}

}  // namespace

TEST(RunFaults, ACrashCostsOneBenchmarkAndTheRunGoesOnInAFreshProcess) {
  const auto& [dir, path, r] = run_into_file("run-crash", "count=5,segv=1,abort=3");
  // Two benchmarks failed: exit code 1, the file is written and the run is complete.
  EXPECT_EQ(r.code, 1) << r.out;
  const auto doc = read_json(path);
  EXPECT_EQ(doc["context"]["interrupted"], false) << r.out;
  EXPECT_EQ(doc["context"]["gpu_name"], "wflops test hook (no GPU)");
  EXPECT_TRUE(doc["context"].contains("date")) << "Google Benchmark's context of the first worker stays";
  const Entries e = entries_of(doc);
  EXPECT_EQ(e.order, (std::vector<std::string>{fake(0), fake(1), fake(2), fake(3), fake(4)}));
  expect_measured(e, fake(0));
  expect_measured(e, fake(2));
  expect_measured(e, fake(4));
  EXPECT_NE(error_of(e, fake(1)).find("died while it ran: signal 11"), std::string::npos) << error_of(e, fake(1));
  EXPECT_NE(error_of(e, fake(3)).find("died while it ran: signal 6"), std::string::npos) << error_of(e, fake(3));
  // One table: one heading, one row per benchmark in run order, the dead ones as ERROR rows.
  EXPECT_EQ(count(r.out, "time/ms"), 1u) << r.out;
  std::size_t last = 0;
  for (int i = 0; i < 5; ++i) {
    const auto at = r.out.find(fake(i) + " ");
    ASSERT_NE(at, std::string::npos) << fake(i) << " has no row:\n" << r.out;
    EXPECT_GT(at, last) << r.out;
    last = at;
  }
  EXPECT_EQ(count(r.out, "ERROR: the benchmark process died"), 2u) << r.out;
  EXPECT_NE(r.out.find("results written to " + path.string()), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
  fs::remove_all(dir);
}

TEST(RunFaults, AStickyCudaErrorEndsTheProcessAndTheRunGoesOn) {
  const auto dir = fresh_dir("run-sticky");
  const FakeRun hook("count=3,sticky=1");
  const auto r = wflops::testing::run_wflops("run --results-dir " + dir.string() + kQuickFlags);
  EXPECT_EQ(r.code, 1) << r.out;
  std::vector<fs::path> files;
  for (const auto& f : fs::directory_iterator(dir)) files.push_back(f.path());
  ASSERT_EQ(files.size(), 1u) << "one result file, named after the GPU and the time";
  EXPECT_EQ(files[0].extension(), ".json");
  const auto doc = read_json(files[0]);
  EXPECT_EQ(doc["context"]["interrupted"], false);
  const Entries e = entries_of(doc);
  EXPECT_EQ(e.order, (std::vector<std::string>{fake(0), fake(1), fake(2)}));
  expect_measured(e, fake(0));
  expect_measured(e, fake(2));
  // Its repetitions keep the benchmark's own error message.
  ASSERT_TRUE(e.by_name.count(fake(1)));
  for (const auto& run : e.by_name.at(fake(1))) {
    EXPECT_TRUE(run.value("error_occurred", false));
    EXPECT_NE(run["error_message"].get<std::string>().find("cudaErrorIllegalAddress"), std::string::npos);
  }
  EXPECT_NE(r.out.find(fake(1) + " left the CUDA context unusable"), std::string::npos) << r.out;
  EXPECT_EQ(count(r.out, "time/ms"), 1u) << r.out;
  fs::remove_all(dir);
}

TEST(RunFaults, SigtermReachesTheWorkerAndKeepsEveryFinishedBenchmark) {
  // Benchmark 2 sends SIGTERM to the parent, as a scheduler would, and waits to be stopped.
  const auto& [dir, path, r] = run_into_file("run-term", "count=4,term=2");
  EXPECT_EQ(r.code, 128 + 15) << r.out;
  const auto doc = read_json(path);
  EXPECT_EQ(doc["context"]["interrupted"], true);
  const Entries e = entries_of(doc);
  EXPECT_EQ(e.order, (std::vector<std::string>{fake(0), fake(1)})) << "the cut benchmark is neither kept nor an "
                                                                      "error, and nothing runs after it";
  expect_measured(e, fake(0));
  expect_measured(e, fake(1));
  EXPECT_NE(r.out.find("interrupted"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("results written to"), std::string::npos) << r.out;
  fs::remove_all(dir);
}

TEST(RunFaults, ARunWithoutFaultsEndsCompleteWithExitZero) {
  const std::string out = run_both_to_the_end("run-clean", "count=2");
  EXPECT_EQ(out.find("fresh process"), std::string::npos) << out;
}

TEST(RunFaults, ACrashOnTheWayOutAfterTheLastBenchmarkCostsNone) {
  const std::string out = run_both_to_the_end("run-exit", "count=2,exitsegv=0");
  EXPECT_NE(out.find("wflops: warning: the benchmark process ended with signal 11 (Segmentation fault) after "
                     "its last benchmark"),
            std::string::npos)
      << out;
}

TEST(RunFaults, AFilterThatMatchesNothingIsOneErrorAndLeavesNoFile) {
  const auto& [dir, path, r] = run_into_file("run-nomatch", "count=2", " --benchmark_filter=nothing_has_this_name");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(r.out.rfind("wflops: error: no benchmark of suite 'quick' matches", 0), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_FALSE(fs::exists(path));
  fs::remove_all(dir);
}
