// The reference table and its reproduction from a result file: the rows are exactly the seed suite,
// the reference's own ratios (hand-computed), and a file's rows read against its own matmul.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "errors.hpp"
#include "registered_benchmarks.hpp"
#include "results/result_reader.hpp"
#include "results/seed_table.hpp"

namespace wflops {

TEST(SeedTable, RowsAreExactlyTheSeedSuiteInItsOrder) {
  const auto seed = testing::registered_benchmarks().suite("seed");
  ASSERT_EQ(seed.size(), seed_rows().size());
  for (std::size_t i = 0; i < seed.size(); ++i) EXPECT_EQ(seed[i]->name, seed_rows()[i].benchmark);
}

TEST(SeedTable, ReferenceRatiosAsTheArticleGivesThem) {
  const ResultFile file = parse_result_text(
      R"({"context": {"source": "wflops", "wflops_version": "0.1.0", "gpu_name": "NVIDIA H100 80GB HBM3"}, "benchmarks": [
        {"name": "matmul/cublaslt_auto/fp16/m:4096/n:8192/k:4096", "tflops": 700, "pct_peak": 70.8}]})",
      "h100.json");
  const auto t = seed_table(file);
  ASSERT_EQ(t.size(), 4u);
  EXPECT_DOUBLE_EQ(t[0].reference_pct_of_matmul, 100.0);
  EXPECT_NEAR(t[1].reference_pct_of_matmul, 97.05, 0.01);  // 230 / 237
  EXPECT_NEAR(t[2].reference_pct_of_matmul, 87.59, 0.01);  // 207.6 / 237
  EXPECT_NEAR(t[3].reference_pct_of_matmul, 78.35, 0.01);  // 185.7 / 237
  // 237 / 312 = 76.0% of the A100's peak.
  EXPECT_NEAR(100.0 * seed_rows()[0].reference_tflops / kSeedReferencePeakTflops, 75.96, 0.01);
}

TEST(SeedTable, RowsReadAgainstTheFilesOwnMatmul) {
  const ResultFile file = parse_result_text(
      R"({"context": {"source": "wflops", "wflops_version": "0.1.0", "gpu_name": "NVIDIA H100 80GB HBM3"}, "benchmarks": [
        {"name": "matmul/cublaslt_auto/fp16/m:4096/n:8192/k:4096", "tflops": 700, "pct_peak": 70.8},
        {"name": "mlp_step/linear/fp16/d:1600/ff:6400/tok:8192", "tflops": 630},
        {"name": "mlp_step/mixed_linear/fp16/d:1600/ff:6400/tok:8192", "error_occurred": true,
         "error_message": "verification failed: relative error 0.5"}]})",
      "h100.json");
  const auto t = seed_table(file);
  EXPECT_DOUBLE_EQ(*t[0].pct_of_matmul, 100.0);
  EXPECT_DOUBLE_EQ(*t[1].tflops, 630.0);
  EXPECT_DOUBLE_EQ(*t[1].pct_of_matmul, 90.0);
  EXPECT_FALSE(t[2].tflops) << "a failed benchmark gives no figure";
  EXPECT_NE(t[2].note.find("verification failed"), std::string::npos) << t[2].note;
  EXPECT_EQ(t[3].note, "not in the file");
  const std::string text = format_seed_table(file);
  EXPECT_NE(text.find("NVIDIA H100 80GB HBM3"), std::string::npos) << text;
  EXPECT_NE(text.find("90.0"), std::string::npos) << text;
  EXPECT_NE(text.find("185.7"), std::string::npos) << text;
}

TEST(SeedTable, AFileWithoutTheSeedRowsIsAClearError) {
  const ResultFile file = parse_result_text(
      R"({"context": {"source": "wflops", "wflops_version": "0.1.0", "gpu_name": "x"}, "benchmarks": [{"name": "matmul/cublas/bf16/m:1/n:1/k:1", "tflops": 1}]})",
      "other.json");
  try {
    seed_table(file);
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--suite seed"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("other.json"), std::string::npos) << e.what();
  }
}

}  // namespace wflops
