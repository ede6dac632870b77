// wflops compare: matching, ratios, noise, partial benchmarks, warnings and cluster outliers on
// the hand-made files of tests/data (values in tests/data/make_fixtures.py).
#include <fmt/core.h>
#include <gtest/gtest.h>

#include "compare.hpp"
#include "errors.hpp"
#include "result_reader.hpp"

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
  for (int i = 1; i <= 4; ++i) files.push_back(read_result_file(kData + "cluster/node" + std::to_string(i) + "-gpu0.json"));
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
  const std::string peer = R"({"context": {"source": "pytorch", "gpu_name": "NVIDIA A100-SXM4-80GB"},
    "benchmarks": [{"name": "matmul/torch_eager/bf16/m:4096/n:8192/k:4096", "tflops": 200}]})";
  const std::vector<ResultFile> files = {read_result_file(kData + "a100.json"), parse_result_text(peer, "peer.json")};
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
  const std::string peer = R"({"context": {"source": "pytorch", "gpu_name": "NVIDIA A100-SXM4-80GB"},
    "benchmarks": [{"name": "matmul/torch_eager/bf16/m:4096/n:8192/k:4096", "tflops": 200},
                   {"name": "matmul/torch_compile/bf16/m:4096/n:8192/k:4096", "tflops": 225}]})";
  const std::vector<ResultFile> files = {read_result_file(kData + "a100.json"), parse_result_text(peer, "peer.json")};
  Options o;
  o.implementation_pairs = {{"torch_compile", "cublaslt_auto"}};
  const Report r = compare_results(files, o);
  const Row& mm = row(r, "matmul/cublaslt_auto/bf16/m:4096/n:8192/k:4096");
  EXPECT_DOUBLE_EQ(*mm.ratio[1], 0.9);  // 225 / 250
  EXPECT_FALSE(has_warning(r, "both match"));
  // The unpaired eager peer stays a row of its own.
  EXPECT_EQ(row(r, "matmul/torch_eager/bf16/m:4096/n:8192/k:4096").present_in, 1u);
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
    {{"name": "cast/vec16/fp32_bf16/n:1", "gbps": 2500}})", r1, r2, r3);
  if (extra) b += R"(, {"name": "matmul/x/bf16/m:4", "tflops": 100, "clock_ratio": 0.5})";
  return R"({"context": {"source": "wflops", "wflops_version": "0.1.0", "gpu_name": "NVIDIA H100 80GB HBM3"},)"
         R"( "benchmarks": [)" + b + "]}";
}

TEST(Compare, WarnsWhenTheFilesClockRatiosDiffer) {
  // Medians over the three shared matmuls: [1] 0.96, [2] 0.90 (its m:4 at 0.5 is not shared),
  // [3] 0.94. |0.90 - 0.96| = 0.06 > 5% of 0.96 = 0.048: a warning; |0.94 - 0.96| = 0.02: none.
  const std::vector<ResultFile> files = {parse_result_text(clocked_file(0.96, 0.95, 0.97), "one.json"),
                                         parse_result_text(clocked_file(0.90, 0.89, 0.91, true), "two.json"),
                                         parse_result_text(clocked_file(0.94, 0.93, 0.95), "three.json")};
  const Report r = compare_results(files, Options{});
  EXPECT_TRUE(has_warning(r, "[2] two.json ran its SM clock at 0.900 of the clock the peak assumes, [1] at 0.960 "
                             "(medians over 3 benchmark(s))"));
  EXPECT_FALSE(has_warning(r, "[3] three.json ran its SM clock"));
  // A looser threshold (10%: 0.096) lets [2] pass too.
  Options loose;
  loose.clock_ratio_pct = 10;
  EXPECT_FALSE(has_warning(compare_results(files, loose), "ran its SM clock"));
  // A file without clock ratios (a PyTorch peer, an older file) gives no clock warning.
  const std::string peer = R"({"context": {"source": "pytorch", "gpu_name": "NVIDIA H100 80GB HBM3"},
    "benchmarks": [{"name": "matmul/x/bf16/m:1", "tflops": 650}]})";
  EXPECT_FALSE(has_warning(compare_results({files[0], parse_result_text(peer, "peer.json")}, Options{}),
                           "ran its SM clock"));
  // The JSON carries each result's clock ratio.
  const auto j = to_json(r);
  EXPECT_DOUBLE_EQ(j["benchmarks"][0]["results"][1]["clock_ratio"].get<double>(), 0.90);
  EXPECT_TRUE(j["benchmarks"][3]["results"][0]["clock_ratio"].is_null()) << "the cast has none";
}

TEST(Compare, NeedsTwoFiles) {
  EXPECT_THROW(compare_results({read_result_file(kData + "a100.json")}, Options{}), UserError);
}

}  // namespace
