// `wflops run` checks every argument before it looks for a GPU: on any machine, bad input is exit
// code 1 and one line "wflops: error: <the flag> ...", and nothing is written.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "program_run.hpp"

namespace {

namespace fs = std::filesystem;

struct BadRun {
  std::string args;
  std::string starts_with;  // the message's first words
};

}  // namespace

TEST(RunArguments, EachBadArgumentIsOneErrorLineNamingItExitOneBeforeTheGpuCheck) {
  const auto dir = fs::temp_directory_path() / ("wflops-run-args-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto existing = dir / "existing.json";
  std::ofstream(existing) << "{}\n";
  const auto results = dir / "results";  // must stay uncreated: nothing is written on bad input
  const std::string where = " --results-dir " + results.string();
  const BadRun cases[] = {
      {"--peak bf16=-5" + where, "wflops: error: --peak 'bf16=-5'"},
      {"--peak nope=5" + where, "wflops: error: --peak 'nope=5'"},
      {"--peak bf16" + where, "wflops: error: --peak 'bf16'"},
      {"--device -1" + where, "wflops: error: --device -1"},
      {"--out " + existing.string(), "wflops: error: --out '" + existing.string() + "' exists already"},
      {"--out " + (existing / "r.json").string(), "wflops: error: --out"},
      {"--results-dir " + (existing / "sub").string(), "wflops: error: --results-dir"},
      {"--results-dir " + existing.string(), "wflops: error: --results-dir"},
      {"--benchmark_bogus=1" + where, "wflops: error: --benchmark_bogus=1"},
      {"--benchmark_repetitions=many" + where, "wflops: error: --benchmark_repetitions=many"},
      {"--benchmark_filter='(' " + where, "wflops: error: --benchmark_filter='('"},
      {"--benchmark_format=xml" + where, "wflops: error: --benchmark_format=xml"},
      {"--benchmark_time_unit=h" + where, "wflops: error: --benchmark_time_unit=h"},
      {"--benchmark_out=" + (dir / "gb.json").string() + where, "wflops: error: --benchmark_out"},
      {"--benchmark_list_tests=true" + where, "wflops: error: --benchmark_list_tests"},
      {"--suite nosuchsuite" + where, "wflops: error: unknown suite 'nosuchsuite'"},
      {"--frobnicate" + where, "wflops: error: unknown argument '--frobnicate'"},
  };
  for (const BadRun& c : cases) {
    const auto r = wflops::testing::run_wflops("run " + c.args);
    EXPECT_EQ(r.code, 1) << c.args << "\n" << r.out;
    EXPECT_EQ(r.out.rfind(c.starts_with, 0), 0u) << c.args << "\n" << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one line: " << c.args << "\n" << r.out;
  }
  EXPECT_FALSE(fs::exists(results)) << "a refused run writes nothing";
  EXPECT_FALSE(fs::exists(dir / "gb.json"));
  std::ifstream in(existing);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "{}\n") << "--out never overwrites a file";
  fs::remove_all(dir);
}

// A directory the run cannot write into is refused before the GPU check. (Root may write anywhere,
// so there the check is skipped: the same rule then lets the run go on to the GPU check.)
TEST(RunArguments, AnUnwritableResultsDirectoryIsRefused) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can write into any directory";
  const auto dir = fs::temp_directory_path() / ("wflops-run-ro-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);
  auto r = wflops::testing::run_wflops("run --results-dir " + (dir / "results").string());
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(r.out.rfind("wflops: error: --results-dir", 0), 0u) << r.out;
  r = wflops::testing::run_wflops("run --results-dir " + dir.string());
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(r.out.rfind("wflops: error: --results-dir", 0), 0u) << r.out;
  fs::permissions(dir, fs::perms::owner_all);
  fs::remove_all(dir);
}
