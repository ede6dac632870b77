// The matmul family's registrations: fp8 is measured with and without cuBLASLt's fast accumulation
// side by side, and the measured ceiling names which mode reached it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "registered_benchmarks.hpp"
#include "results/result_reporter.hpp"

namespace wflops {

namespace {

std::string twin_impl(const std::string& impl) {
  if (impl == "cublaslt") return "cublaslt_fastacc";
  if (impl == "cublaslt_auto") return "cublaslt_auto_fastacc";
  if (impl == "cublaslt_fastacc") return "cublaslt";
  if (impl == "cublaslt_auto_fastacc") return "cublaslt_auto";
  return "";
}

}  // namespace

TEST(MatmulRegistry, EveryFp8CublasLtMatmulHasAFastAccumulationTwin) {
  int fp8 = 0, fastacc = 0;
  for (const BenchSpec& s : testing::registered_benchmarks().all()) {
    if (s.family != "matmul") continue;
    const bool is_fastacc = s.impl.find("fastacc") != std::string::npos;
    if (is_fastacc) {
      ++fastacc;
      EXPECT_EQ(s.dtype, DType::fp8_e4m3) << s.name << ": fast accumulation is an fp8 mode";
    }
    const std::string twin = twin_impl(s.impl);
    if (s.dtype != DType::fp8_e4m3 || twin.empty()) continue;
    ++fp8;
    const std::string twin_name = "matmul/" + twin + "/fp8/" + s.shape;
    const BenchSpec* other = testing::registered_benchmarks().find(twin_name);
    ASSERT_NE(other, nullptr) << s.name << " has no twin " << twin_name;
    EXPECT_EQ(other->suites, s.suites) << s.name << " and its twin run in the same suites";
  }
  // Per mode: reference 2 + square 5 x 2 + transformer 40 + max 48 = 100 registrations, of which 9 name a
  // shape already registered (a name registered twice is one benchmark in more suites): the reference
  // and 4096^3 and 16384^3 lie in the max grid (3), 8192^3 is square, transformer and max (2), and the
  // four h = 4096, T = 8192 transformer GEMMs lie in the max grid (4).
  EXPECT_EQ(fastacc, 100 - 9);
  EXPECT_EQ(fp8, 2 * fastacc);
  EXPECT_NE(testing::registered_benchmarks().find("matmul/cublaslt_auto_fastacc/fp8/m:4096/n:8192/k:4096"), nullptr);
}

TEST(MatmulRegistry, TheCeilingNamesTheFp8ModeThatReachedIt) {
  nlohmann::json b = nlohmann::json::array();
  b.push_back({{"name", "matmul/cublaslt_auto/fp8/m:8192/n:8192/k:8192"},
               {"run_type", "iteration"},
               {"repetitions", 1},
               {"tflops", 1200.0}});
  b.push_back({{"name", "matmul/cublaslt_auto_fastacc/fp8/m:8192/n:8192/k:8192"},
               {"run_type", "iteration"},
               {"repetitions", 1},
               {"tflops", 1400.0}});
  const auto c = matmul_ceiling(b);
  EXPECT_DOUBLE_EQ(c["fp8"]["tflops"].get<double>(), 1400.0);
  EXPECT_EQ(c["fp8"]["benchmark"], "matmul/cublaslt_auto_fastacc/fp8/m:8192/n:8192/k:8192");
}

}  // namespace wflops
