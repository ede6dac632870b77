// Bad input as a new user types it: each gets one line on stderr starting "wflops: error:" that
// names the flag or file, exit code 1, and nothing on stdout.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "program_run.hpp"

namespace {

struct Case {
  std::string args;
  std::string message_start;  // what the line says right after "wflops: error: "
};

void expect_refused(const Case& c) {
  const auto stdout_only = wflops::testing::run_wflops(c.args, /*with_stderr=*/false);
  EXPECT_EQ(stdout_only.out, "") << c.args << ": nothing on stdout";
  const auto r = wflops::testing::run_wflops(c.args);
  EXPECT_EQ(r.code, 1) << c.args << "\n" << r.out;
  EXPECT_EQ(r.out.rfind("wflops: error: " + c.message_start, 0), 0u) << c.args << "\n" << r.out;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << c.args << ": one line\n" << r.out;
}

std::filesystem::path scratch(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("wflops-bad-input-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir / name;
}

const char* kModel = "--layers 2 --vocab 1000 --seq 128";

}  // namespace

TEST(CliBadInput, ParseErrorsExitOneWithOneLine) {
  expect_refused({"frobnicate", "unknown subcommand 'frobnicate' (subcommands: run, list, peaks"});
  expect_refused({"", "a subcommand is required (run, list"});
  expect_refused({"params --hidden x --layers 2 --vocab 10 --seq 10", "Could not convert: --hidden = x"});
  expect_refused({"params --hidden 768 --layers 2 --vocab 10 --seq 10 --bogus",
                  "The following argument was not expected: --bogus"});
  expect_refused({"compare only-one.json", "files: At least 2 required"});
  expect_refused({"list --frobnicate", "The following argument was not expected: --frobnicate"});
}

TEST(CliBadInput, VersionPrintsVersionAndCommit) {
  const auto r = wflops::testing::run_wflops("--version");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("wflops 0.", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("(commit "), std::string::npos) << r.out;
}

TEST(CliBadInput, CountsMustBeWholePositiveNumbersInRange) {
  const std::string model = kModel;
  expect_refused({"params --hidden 768.5 " + model, "--hidden must be a whole number (got 768.5)"});
  expect_refused({"params --hidden 1e300 " + model, "--hidden 1e+300 is out of range (it must be at most 1048576)"});
  expect_refused({"params --hidden 768 --layers 2.5 --vocab 1000 --seq 128", "--layers must be a whole number"});
  expect_refused({"params --hidden 768 " + model + " --experts 1.5", "--experts must be a whole number"});
  expect_refused({"params --hidden 768 " + model + " --experts 8 --granularity 0", "--granularity must be a positive"});
  expect_refused({"budget --params 7e9 --tokens 1.4e12 --gpus 8.5 --tflops 400", "--gpus must be a whole number"});
  expect_refused({"budget --params 7e9 --tokens 1.4e12 --gpus 0 --tflops 400", "--gpus must be a positive number"});
  expect_refused({"budget --params 7e9 --tokens 1.4e12 --gpus 256 --tflops 1e308", "--tflops 1e+308 is out of range"});
  expect_refused({"budget --params 1e300 --tokens 1.4e12 --gpus 256 --tflops 400", "--params 1e+300 is out of range"});
  expect_refused({"budget --gpus 256 --tflops 400 --days 1e300", "--days 1e+300 is out of range"});
}

TEST(CliBadInput, AttentionShareChecksHeadsAndDtype) {
  const std::string args = "attention-share --results missing.json --hidden 1600 --seq 1024";
  expect_refused({args + " --heads 0", "--heads must be a positive whole number (got 0)"});
  expect_refused({args + " --heads -4", "--heads must be a positive whole number (got -4)"});
  expect_refused({args + " --dtype nope", "--dtype 'nope' is not a dtype wflops knows"});
  // 1600 = 25 x 64: the default H/128 does not fit; the message says what would, and that --heads exists.
  const auto r = wflops::testing::run_wflops(args);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("choose with --heads"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("25 heads of 64"), std::string::npos) << r.out;
  expect_refused({"attention-share --results missing.json --hidden 768.5 --seq 1024", "Could not convert"});
}

TEST(CliBadInput, FilesThatAreNotResultFiles) {
  const auto dir = scratch("a-directory");
  std::filesystem::create_directories(dir);
  expect_refused({"seed-table " + dir.string(), "'" + dir.string() + "' is a directory, not a result file"});
  const auto huge = scratch("huge-number.json");
  std::ofstream(huge) << R"({"context": {}, "benchmarks": [{"name": "x", "real_time": 1e400}]})";
  expect_refused({"seed-table " + huge.string(), "'" + huge.string() + "' is not valid JSON: number overflow"});
  expect_refused({"seed-table " + scratch("absent.json").string(), "cannot read"});
}
