// wflops compare: matching, ratios, noise, partial benchmarks, warnings and cluster outliers on
// the hand-made files of tests/data (values in tests/data/make_fixtures.py).
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "errors.hpp"
#include "results/compare.hpp"
#include "results/result_reader.hpp"

namespace {

using namespace wflops;
using namespace wflops::compare;

const std::string kData = WFLOPS_SOURCE_DIR "/tests/data/";
const std::string kMM1 = "matmul/cublaslt_auto/bf16/m:4096/n:8192/k:4096";

const Row& row(const Report& r, const std::string& key) {
  for (const auto& x : r.rows) {
    if (x.key == key) return x;
  }
  throw std::runtime_error("no row " + key);
}

bool has_warning(const Report& r, const std::string& text) {
  for (const auto& w : r.warnings) {
    if (w.find(text) != std::string::npos) return true;
  }
  return false;
}

// The A100 fixture and a PyTorch peer's file of these benchmark entries, from an A100 too.
std::vector<ResultFile> a100_and_peer(const std::string& benchmarks) {
  const std::string peer =
      R"({"context": {"source": "pytorch", "gpu_name": "NVIDIA A100-SXM4-80GB"}, "benchmarks": [)" + benchmarks + "]}";
  return {read_result_file(kData + "a100.json"), parse_result_text(peer, "peer.json")};
}

// compare_results with the one pairing --pair THEIRS=OURS.
Report compare_paired(const std::vector<ResultFile>& files, const std::string& theirs, const std::string& ours) {
  Options o;
  o.implementation_pairs = {{theirs, ours}};
  return compare_results(files, o);
}

TEST(Compare, A100AgainstH100) {
  const std::vector<ResultFile> files = {read_result_file(kData + "a100.json"), read_result_file(kData + "h100.json")};
  const Report r = compare_results(files, Options{});
  ASSERT_EQ(r.rows.size(), 6u);  // 5 in the A100 file + the fp8 one only in the H100 file
  // 700 / 250 = 2.8; |700 - 250| = 450 > 2 sqrt(2^2 + 10^2) = 20.4: beyond noise.
  const Row& mm1 = row(r, kMM1);
  EXPECT_DOUBLE_EQ(*mm1.ratio[1], 2.8);
  EXPECT_EQ(mm1.noise[1], Noise::beyond);
  // Single runs: a ratio (400 / 140) but no spread to judge it by.
  const Row& tf32 = row(r, "matmul/cublaslt_auto/tf32/m:8192/n:8192/k:8192");
  EXPECT_NEAR(*tf32.ratio[1], 400.0 / 140.0, 1e-12);
  EXPECT_EQ(tf32.noise[1], Noise::unknown);
  // Failed in the first file: no ratio.
  EXPECT_FALSE(row(r, "matmul/wmma/bf16/m:4096/n:4096/k:4096").ratio[1].has_value());
  // In only one file each.
  EXPECT_EQ(row(r, "mlp_step/fused_gelu_residual/bf16/d:1600/ff:6400/tok:8192").present_in, 1u);
  EXPECT_EQ(row(r, "matmul/cublaslt_auto/fp8/m:8192/n:8192/k:8192").present_in, 1u);
  EXPECT_TRUE(has_warning(r, "cuBLAS: [1] 12.4.5, [2] 12.9.1"));
  EXPECT_TRUE(has_warning(r, "CUDA runtime"));
  EXPECT_FALSE(has_warning(r, "wflops version"));  // both 0.1.0
  EXPECT_TRUE(has_warning(r, "1 benchmark(s) failed"));
  EXPECT_FALSE(r.cluster);  // two GPU models
}

TEST(Compare, ClusterOutlier) {
  std::vector<ResultFile> files;
  for (int i = 1; i <= 4; ++i) {
    files.push_back(read_result_file(kData + "cluster/node" + std::to_string(i) + "-gpu0.json"));
  }
  const Report r = compare_results(files, Options{});
  ASSERT_TRUE(r.cluster);
  ASSERT_EQ(r.standings.size(), 4u);
  // Medians of the four nodes: 699, 769, 595. node3: (595/699 x 650/769 x 520/595)^(1/3) = 0.85672.
  EXPECT_NEAR(r.standings[2].ratio_to_median, 0.8567177, 1e-6);
  EXPECT_TRUE(r.standings[2].outlier);
  EXPECT_EQ(r.standings[2].below, 3u);
  // node1: (700/699 x 770/769 x 600/595)^(1/3) = 1.00371.
  EXPECT_NEAR(r.standings[0].ratio_to_median, 1.0037060, 1e-6);
  for (int i : {0, 1, 3}) EXPECT_FALSE(r.standings[i].outlier) << i;
  // node2 against node1: 705 vs 700 with stddevs 5 and 5: 5 < 2 sqrt(50) = 14.1, within noise;
  // 590 vs 600 with stddevs 2 and 2: 10 > 2 sqrt(8) = 5.66, beyond.
  EXPECT_EQ(row(r, kMM1).noise[1], Noise::within);
  EXPECT_EQ(row(r, "matmul/cublaslt_auto/bf16/m:2048/n:2048/k:2048").noise[1], Noise::beyond);
  // A stricter threshold (20%) flags nobody.
  Options loose;
  loose.outlier_pct = 20;
  for (const auto& s : compare_results(files, loose).standings) EXPECT_FALSE(s.outlier);
  // Two files are not enough for a median.
  EXPECT_FALSE(compare_results({files[0], files[2]}, Options{}).cluster);
}

TEST(Compare, IgnoringTheImplementation) {
  const std::vector<ResultFile> files =
      a100_and_peer(R"({"name": "matmul/torch_eager/bf16/m:4096/n:8192/k:4096", "tflops": 200})");
  // By default exact names: nothing shared.
  EXPECT_EQ(compare_results(files, Options{}).rows.size(), 6u);
  Options o;
  o.ignore_implementation = true;
  const Report r = compare_results(files, o);
  const Row& mm = row(r, "matmul/*/bf16/m:4096/n:8192/k:4096");
  EXPECT_DOUBLE_EQ(*mm.ratio[1], 0.8);
  EXPECT_TRUE(has_warning(r, "PyTorch peer"));
  // cublaslt_auto and wmma of 4096x4096x4096 are different sizes, so no clash there.
  EXPECT_FALSE(has_warning(r, "both match"));
}

TEST(Compare, PairingImplementations) {
  // A peer file holding two variants of one shape: --ignore-impl would collide them; --pair maps
  // each peer implementation onto the wflops one it stands for.
  const std::vector<ResultFile> files =
      a100_and_peer(R"({"name": "matmul/torch_eager/bf16/m:4096/n:8192/k:4096", "tflops": 200},
                   {"name": "matmul/torch_compile/bf16/m:4096/n:8192/k:4096", "tflops": 225})");
  const Report r = compare_paired(files, "torch_compile", "cublaslt_auto");
  const Row& mm = row(r, "matmul/cublaslt_auto/bf16/m:4096/n:8192/k:4096");
  EXPECT_DOUBLE_EQ(*mm.ratio[1], 0.9);  // 225 / 250
  EXPECT_FALSE(has_warning(r, "both match"));
  // The unpaired eager peer stays a row of its own.
  EXPECT_EQ(row(r, "matmul/torch_eager/bf16/m:4096/n:8192/k:4096").present_in, 1u);
}

TEST(Compare, WarnsWhenAPairPairsNothing) {
  const std::vector<ResultFile> files =
      a100_and_peer(R"({"name": "matmul/torch_eager/bf16/m:4096/n:8192/k:4096", "tflops": 200},
                   {"name": "matmul/torch_compile/bf16/m:1/n:1/k:1", "tflops": 1})");
  // A typo: no benchmark has the implementation "torch_eagre".
  Report r = compare_paired(files, "torch_eagre", "cublaslt_auto");
  EXPECT_TRUE(has_warning(r,
                          "--pair torch_eagre=cublaslt_auto pairs nothing: no file has a benchmark with the "
                          "implementation 'torch_eagre' (the files have: cublaslt_auto, fused_gelu_residual, "
                          "torch_compile, torch_eager, wmma)"));
  // The implementation exists, but no file has its shape under the other name.
  r = compare_paired(files, "torch_compile", "cublaslt_auto");
  EXPECT_TRUE(has_warning(r,
                          "--pair torch_compile=cublaslt_auto pairs nothing: none of the 1 benchmark(s) named "
                          "'torch_compile'"));
  // A pair that matches gives no such warning.
  EXPECT_FALSE(has_warning(compare_paired(files, "torch_eager", "cublaslt_auto"), "pairs nothing"));
}

TEST(Compare, Rendering) {
  const std::vector<ResultFile> files = {read_result_file(kData + "a100.json"), read_result_file(kData + "h100.json")};
  const Report r = compare_results(files, Options{});
  const std::string table = render(r, Format::table);
  EXPECT_NE(table.find("2.800*"), std::string::npos) << table;
  EXPECT_NE(table.find("In only some of the files (2)"), std::string::npos);
  EXPECT_NE(render(r, Format::markdown).find("| " + kMM1 + " | 250.0 | 80.1 | 700.0 | 70.8 | 2.800* |"),
            std::string::npos);
  const std::string csv = render(r, Format::csv);
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "benchmark,tflops_1,pct_peak_1,stddev_1,tflops_2,pct_peak_2,stddev_2,ratio_2,beyond_noise_2");
  EXPECT_NE(csv.find(kMM1 + ",250,"), std::string::npos) << csv;
  const auto j = to_json(r);
  EXPECT_EQ(j["benchmarks"].size(), 6u);
  EXPECT_EQ(j["only_in_some"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["benchmarks"][0]["ratio"][1].get<double>(), 2.8);
  EXPECT_EQ(j["benchmarks"][0]["beyond_noise"][1], true);
  EXPECT_TRUE(j["cluster"].is_null());
  EXPECT_EQ(parse_format("md"), Format::markdown);
  EXPECT_THROW(parse_format("xml"), UserError);
}

// A result file of three matmuls with the given clock ratios, one memory-bound cast without one,
// and optionally a fourth matmul that only this file has.
std::string clocked_file(double r1, double r2, double r3, bool extra = false) {
  std::string b = fmt::format(R"({{"name": "matmul/x/bf16/m:1", "tflops": 700, "clock_ratio": {}}},
    {{"name": "matmul/x/bf16/m:2", "tflops": 600, "clock_ratio": {}}},
    {{"name": "matmul/x/bf16/m:3", "tflops": 500, "clock_ratio": {}}},
    {{"name": "cast/vec16/fp32_bf16/n:1", "gbps": 2500}})",
                              r1, r2, r3);
  if (extra) b += R"(, {"name": "matmul/x/bf16/m:4", "tflops": 100, "clock_ratio": 0.5})";
  return R"({"context": {"source": "wflops", "wflops_version": "0.1.0", "gpu_name": "NVIDIA H100 80GB HBM3"},)"
         R"( "benchmarks": [)" +
         b + "]}";
}

TEST(Compare, WarnsWhenTheFilesClockRatiosDiffer) {
  // Medians over the three shared matmuls: [1] 0.96, [2] 0.90 (its m:4 at 0.5 is not shared),
  // [3] 0.94. |0.90 - 0.96| = 0.06 > 5% of 0.96 = 0.048: a warning; |0.94 - 0.96| = 0.02: none.
  const std::vector<ResultFile> files = {parse_result_text(clocked_file(0.96, 0.95, 0.97), "one.json"),
                                         parse_result_text(clocked_file(0.90, 0.89, 0.91, true), "two.json"),
                                         parse_result_text(clocked_file(0.94, 0.93, 0.95), "three.json")};
  const Report r = compare_results(files, Options{});
  EXPECT_TRUE(has_warning(r,
                          "[2] two.json ran its SM clock at 0.900 of the clock the peak assumes, [1] at 0.960 "
                          "(medians over 3 benchmark(s))"));
  EXPECT_FALSE(has_warning(r, "[3] three.json ran its SM clock"));
  // A looser threshold (10%: 0.096) lets [2] pass too.
  Options loose;
  loose.clock_ratio_pct = 10;
  EXPECT_FALSE(has_warning(compare_results(files, loose), "ran its SM clock"));
  // A file without clock ratios (a PyTorch peer, an older file) gives no clock warning.
  const std::string peer = R"({"context": {"source": "pytorch", "gpu_name": "NVIDIA H100 80GB HBM3"},
    "benchmarks": [{"name": "matmul/x/bf16/m:1", "tflops": 650}]})";
  EXPECT_FALSE(
      has_warning(compare_results({files[0], parse_result_text(peer, "peer.json")}, Options{}), "ran its SM clock"));
  // The JSON carries each result's clock ratio.
  const auto j = to_json(r);
  EXPECT_DOUBLE_EQ(j["benchmarks"][0]["results"][1]["clock_ratio"].get<double>(), 0.90);
  EXPECT_TRUE(j["benchmarks"][3]["results"][0]["clock_ratio"].is_null()) << "the cast has none";
}

TEST(Compare, NeedsTwoFiles) {
  EXPECT_THROW(compare_results({read_result_file(kData + "a100.json")}, Options{}), UserError);
}

// A wflops result file holding the given benchmark entries (JSON objects, comma-separated).
std::string file_with(const std::string& entries) {
  return R"({"context": {"source": "wflops", "wflops_version": "0.1.0", "gpu_name": "NVIDIA H100 80GB HBM3"},)"
         R"( "benchmarks": [)" +
         entries + "]}";
}

std::string refusal(const std::vector<ResultFile>& files) {
  try {
    compare_results(files, Options{});
  } catch (const UserError& e) {
    return e.what();
  }
  return "(not refused)";
}

TEST(Compare, RefusesFiguresNoMeasurementGives) {
  const ResultFile good = parse_result_text(file_with(R"({"name": "matmul/x/bf16/m:1", "tflops": 700})"), "good.json");
  // Zero or negative TFLOP/s, a negative bandwidth or share of the peak, on a benchmark with no
  // error: the message names the file, the benchmark and the counter.
  for (const auto& [entry, counter] : std::vector<std::pair<std::string, std::string>>{
           {R"({"name": "matmul/x/bf16/m:1", "tflops": 0})", "tflops = 0"},
           {R"({"name": "matmul/x/bf16/m:1", "tflops": -5})", "tflops = -5"},
           {R"({"name": "cast/vec16/fp32_bf16/n:1", "gbps": -2500})", "gbps = -2500"},
           {R"({"name": "cast/vec16/fp32_bf16/n:1", "bytes": 1e9, "gbps": 0})", "gbps = 0"},
           {R"({"name": "matmul/x/bf16/m:1", "tflops": 700, "pct_peak": -70})", "pct_peak = -70"}}) {
    const std::string why = refusal({good, parse_result_text(file_with(entry), "bad.json")});
    EXPECT_EQ(why.rfind("'bad.json': benchmark '", 0), 0u) << why;
    EXPECT_NE(why.find(counter + " without an error"), std::string::npos) << why;
  }
  // 0 GB/s beside 0 bytes (not counted, as files written before bytes were counted have it) passes.
  const ResultFile uncounted = parse_result_text(
      file_with(R"({"name": "matmul/x/bf16/m:1", "tflops": 700, "bytes": 0, "gbps": 0})"), "uncounted.json");
  EXPECT_NO_THROW(compare_results({good, uncounted}, Options{}));
  // With repetitions the median aggregate stands for the benchmark, so it is the one checked.
  const std::string reps = R"({"name": "matmul/x/bf16/m:1", "run_name": "matmul/x/bf16/m:1", "run_type": "aggregate",
    "aggregate_name": "median", "tflops": -1})";
  EXPECT_NE(refusal({good, parse_result_text(file_with(reps), "reps.json")}).find("tflops = -1"), std::string::npos);
  // A failed benchmark has no figures to check, whatever its entry holds.
  const ResultFile failed = parse_result_text(
      file_with(R"({"name": "matmul/x/bf16/m:1", "error_occurred": true, "error_message": "oom", "tflops": 0})"),
      "failed.json");
  EXPECT_NO_THROW(compare_results({good, failed}, Options{}));
}

TEST(Compare, WarnsAboutAPeakFarOver100PerCent) {
  // 131.4% is the fp8 GEMM read against the bf16 peak (1300 / 989); 108% is within what a boost
  // clock over the peak's clock can give, so it passes.
  const ResultFile over =
      parse_result_text(file_with(R"({"name": "matmul/x/fp8/m:1", "tflops": 1300, "pct_peak": 131.4},
                   {"name": "matmul/x/bf16/m:1", "tflops": 1068, "pct_peak": 108})"),
                        "over.json");
  const ResultFile good = parse_result_text(file_with(R"({"name": "matmul/x/bf16/m:1", "tflops": 700})"), "good.json");
  const Report r = compare_results({good, over}, Options{});
  EXPECT_TRUE(
      has_warning(r, "[2] over.json: 1 benchmark(s) over 110% of the datasheet peak: matmul/x/fp8/m:1 (131.4%)"));
  EXPECT_FALSE(has_warning(r, "matmul/x/bf16/m:1 (108"));
  // The TFLOP/s still compare.
  EXPECT_DOUBLE_EQ(*row(r, "matmul/x/bf16/m:1").ratio[1], 1068.0 / 700.0);
}

TEST(Compare, SaysWhenAFileHasNoBenchmarks) {
  const ResultFile empty = parse_result_text(file_with(""), "empty.json");
  const ResultFile good = parse_result_text(file_with(R"({"name": "matmul/x/bf16/m:1", "tflops": 700})"), "good.json");
  const Report r = compare_results({good, empty}, Options{});
  EXPECT_TRUE(has_warning(r, "[2] empty.json has no benchmarks"));
  EXPECT_FALSE(has_warning(r, "[1] good.json has no benchmarks"));
}

TEST(Compare, TheTableLeavesWarningsToStderrAndMarkdownKeepsThem) {
  const std::vector<ResultFile> files = {read_result_file(kData + "a100.json"), read_result_file(kData + "h100.json")};
  const Report r = compare_results(files, Options{});
  ASSERT_TRUE(has_warning(r, "cuBLAS"));
  EXPECT_EQ(render(r, Format::table).find("cuBLAS"), std::string::npos);
  EXPECT_EQ(render(r, Format::csv).find("cuBLAS"), std::string::npos);
  const std::string md = render(r, Format::markdown);
  const auto heading = md.find("\nWarnings:\n\n- ");
  ASSERT_NE(heading, std::string::npos) << md;
  EXPECT_GT(md.find("\n- the files differ in cuBLAS: [1] 12.4.5, [2] 12.9.1\n"), heading) << md;
  EXPECT_FALSE(to_json(r)["warnings"].empty());
}

// The program, with its stdout and stderr kept apart.
struct Streams {
  int code = -1;
  std::string out, err;
};

Streams run_program(const std::string& args) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string out = (dir / fmt::format("wflops-compare-{}.out", ::getpid())).string();
  const std::string err = (dir / fmt::format("wflops-compare-{}.err", ::getpid())).string();
  const int status = std::system(fmt::format("{} {} >{} 2>{}", WFLOPS_BINARY, args, out, err).c_str());
  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  Streams r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

TEST(CompareProgram, WarningsGoToStderrInEveryFormat) {
  const std::string files = kData + "a100.json " + kData + "h100.json";
  for (const char* format : {"table", "markdown", "csv", "json"}) {
    const Streams s = run_program(fmt::format("compare {} --format {}", files, format));
    ASSERT_EQ(s.code, 0) << format << s.err;
    EXPECT_EQ(s.err.rfind("wflops: warning: ", 0), 0u) << format << ": " << s.err;
    EXPECT_NE(s.err.find("wflops: warning: the files differ in cuBLAS: [1] 12.4.5, [2] 12.9.1\n"), std::string::npos)
        << format << ": " << s.err;
    // Every stderr line is a warning, and stdout (the report a script reads) has none of these lines.
    std::istringstream lines(s.err);
    for (std::string line; std::getline(lines, line);) EXPECT_EQ(line.rfind("wflops: warning: ", 0), 0u) << line;
    EXPECT_EQ(s.out.find("wflops: warning"), std::string::npos) << format;
  }
  const Streams pair = run_program("compare " + files + " --pair torch_eagre=cublaslt_auto");
  EXPECT_EQ(pair.code, 0);
  EXPECT_NE(pair.err.find("wflops: warning: --pair torch_eagre=cublaslt_auto pairs nothing"), std::string::npos)
      << pair.err;
}

TEST(CompareProgram, RefusesBadCountersAndOptionsWithOneLine) {
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("wflops-compare-bad-{}", ::getpid());
  std::filesystem::create_directories(dir);
  const std::string bad = (dir / "negative.json").string();
  std::ofstream(bad) << file_with(R"({"name": "matmul/x/bf16/m:1", "tflops": -700})");
  const std::string a100 = kData + "a100.json";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"compare " + a100 + " " + bad, "wflops: error: '" + bad + "': benchmark 'matmul/x/bf16/m:1' has tflops = -700"},
      {"compare " + a100 + " " + a100 + " --noise-sigmas -1", "wflops: error: --noise-sigmas -1: expected"},
      {"compare " + a100 + " " + a100 + " --outlier-pct 100", "wflops: error: --outlier-pct 100: expected"},
      {"compare " + a100 + " " + a100 + " --ignore-impl --pair a=b", "wflops: error: --pair with --ignore-impl"},
  };
  for (const auto& [args, first_words] : cases) {
    const Streams s = run_program(args);
    EXPECT_EQ(s.code, 1) << args;
    EXPECT_EQ(s.err.rfind(first_words, 0), 0u) << args << ": " << s.err;
    EXPECT_EQ(std::count(s.err.begin(), s.err.end(), '\n'), 1) << args << ": " << s.err;
    EXPECT_TRUE(s.out.empty()) << args << ": " << s.out;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
