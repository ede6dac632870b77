// The MLP family's registrations: the seed suite reproduces exactly the reference table, every MLP
// baseline is a benchmark registered earlier in the same suites, and the FLOP counts.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "registered_benchmarks.hpp"
#include "registry.hpp"

namespace wflops {

namespace {

const Registry& all_benchmarks() { return testing::registered_benchmarks(); }

bool is_mlp(const BenchSpec& s) { return s.family == "mlp_step" || s.family == "mlp_fwd"; }

}  // namespace

TEST(MlpRegistry, SeedSuiteIsExactlyTheReferenceTable) {
  std::set<std::string> names;
  for (const BenchSpec* s : all_benchmarks().suite("seed")) names.insert(s->name);
  const std::set<std::string> want = {
      "matmul/cublaslt_auto/fp16/m:4096/n:8192/k:4096",
      "mlp_step/linear/fp16/d:1600/ff:6400/tok:8192",
      "mlp_step/mixed_linear/fp16/d:1600/ff:6400/tok:8192",
      "mlp_step/mixed_unfused_relu_residual/fp16/d:1600/ff:6400/tok:8192",
  };
  EXPECT_EQ(names, want);
  // In the table's order: the matmul, then the linear step the other two are read against.
  const auto seed = all_benchmarks().suite("seed");
  ASSERT_EQ(seed.size(), 4u);
  EXPECT_EQ(seed[0]->family, "matmul");
  EXPECT_EQ(seed[1]->name, "mlp_step/linear/fp16/d:1600/ff:6400/tok:8192");
}

TEST(MlpRegistry, BaselinesAreRegisteredEarlierInTheSameSuites) {
  std::map<std::string, std::size_t> index;
  const auto& specs = all_benchmarks().all();
  for (std::size_t i = 0; i < specs.size(); ++i) index[specs[i].name] = i;
  int with_baseline = 0;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const BenchSpec& s = specs[i];
    if (!is_mlp(s)) continue;
    if (s.impl == "linear") {
      EXPECT_TRUE(s.baseline.empty()) << s.name;
      continue;
    }
    ASSERT_FALSE(s.baseline.empty()) << s.name << " has no baseline";
    ++with_baseline;
    const auto it = index.find(s.baseline);
    ASSERT_NE(it, index.end()) << s.name << ": baseline " << s.baseline << " is not registered";
    EXPECT_LT(it->second, i) << s.name << ": baseline registered after it";
    const BenchSpec& base = specs[it->second];
    EXPECT_EQ(base.impl, "linear") << s.name;
    EXPECT_EQ(base.family, s.family) << s.name;
    EXPECT_EQ(base.dtype, s.dtype) << s.name;
    if (s.impl.find("swiglu") != std::string::npos) {
      // The gated MLP (d_ff = 8/3 d) is read against the 4d MLP of the same d and T.
      const std::size_t ff = s.shape.find("/ff:"), tok = s.shape.find("/tok:");
      const long d = std::stol(s.shape.substr(2, ff - 2));
      EXPECT_EQ(base.shape, s.shape.substr(0, ff) + "/ff:" + std::to_string(4 * d) + s.shape.substr(tok)) << s.name;
    } else {
      EXPECT_EQ(base.shape, s.shape) << s.name;
    }
    for (const char* suite : {"mlp", "quick", "seed"}) {
      if (s.suites.count(suite)) {
        EXPECT_TRUE(base.suites.count(suite)) << s.name << " in " << suite;
      }
    }
  }
  EXPECT_GT(with_baseline, 100);
}

TEST(MlpRegistry, QuickSuiteHoldsTheReferenceBf16Set) {
  std::set<std::string> names;
  for (const BenchSpec* s : all_benchmarks().suite("quick")) {
    if (is_mlp(*s)) names.insert(s->name);
  }
  for (const char* word : {"linear", "unfused_gelu_residual", "fused_gelu_residual", "mixed_linear"}) {
    EXPECT_TRUE(names.count(std::string("mlp_step/") + word + "/bf16/d:1600/ff:6400/tok:8192")) << word;
  }
  EXPECT_TRUE(names.count("mlp_fwd/fused_gelu_residual/bf16/d:1600/ff:6400/tok:8192"));
  EXPECT_TRUE(names.count("mlp_step/fused_swiglu/bf16/d:1600/ff:4288/tok:8192"));
  // Besides the reference set (and its SwiGLU step), only the dense MLP steps the MoE family reads
  // itself against.
  for (const std::string& n : names) {
    if (n.find("/bf16/d:1600/ff:6400/tok:8192") != std::string::npos) continue;
    if (n == "mlp_step/fused_swiglu/bf16/d:1600/ff:4288/tok:8192") continue;
    EXPECT_NE(all_benchmarks().find(n)->label.find("dense MLP"), std::string::npos) << n;
  }
}

TEST(MlpRegistry, FlopsFromTheFlopModel) {
  const BenchSpec* ref = all_benchmarks().find("mlp_step/linear/fp16/d:1600/ff:6400/tok:8192");
  ASSERT_NE(ref, nullptr);
  EXPECT_DOUBLE_EQ(ref->flops, 1006632960000.0);  // 6 * 20,480,000 * 8192
  const BenchSpec* fused = all_benchmarks().find("mlp_step/fused_gelu_residual/bf16/d:1600/ff:6400/tok:8192");
  ASSERT_NE(fused, nullptr);
  EXPECT_DOUBLE_EQ(fused->flops, 1006632960000.0);  // biases and activations add no weight FLOPs
  const BenchSpec* fwd = all_benchmarks().find("mlp_fwd/fused_gelu_residual/bf16/d:1600/ff:6400/tok:8192");
  ASSERT_NE(fwd, nullptr);
  EXPECT_DOUBLE_EQ(fwd->flops, 335544320000.0);  // 2 * 20,480,000 * 8192
  const BenchSpec* small = all_benchmarks().find("mlp_step/unfused_relu/bf16/d:768/ff:3072/tok:2048");
  ASSERT_NE(small, nullptr);
  EXPECT_DOUBLE_EQ(small->flops, 57982058496.0);  // 6 * 2 * 768 * 3072 * 2048
  const BenchSpec* big = all_benchmarks().find("mlp_step/fused_gelu/bf16/d:8192/ff:32768/tok:65536");
  ASSERT_NE(big, nullptr);
  EXPECT_DOUBLE_EQ(big->flops, 6.0 * 2 * 8192 * 32768 * 65536.0);
  EXPECT_TRUE(big->suites.count("mlp"));
  EXPECT_TRUE(all_benchmarks().suite("full").size() >= all_benchmarks().suite("mlp").size());
}

// The parts of the time split carry their least bytes (flops::mlp_phase_bytes), which the harness
// turns into phase_gbps_<part>; a part that moves nothing (the fused step's elementwise work lives in
// its epilogues) states none.
TEST(MlpRegistry, StepsStateTheBytesOfTheirMemoryBoundParts) {
  const BenchSpec* mixed = all_benchmarks().find("mlp_step/mixed_unfused_relu_residual/fp16/d:1600/ff:6400/tok:8192");
  ASSERT_NE(mixed, nullptr);
  EXPECT_DOUBLE_EQ(mixed->counters.at("phase_bytes_elementwise"), 1074838400.0);  // test_flops_elementwise
  EXPECT_DOUBLE_EQ(mixed->counters.at("phase_bytes_cast"), 122928000.0);
  EXPECT_DOUBLE_EQ(mixed->counters.at("phase_bytes_optimizer"), 573664000.0);

  const BenchSpec* linear = all_benchmarks().find("mlp_step/linear/fp16/d:1600/ff:6400/tok:8192");
  ASSERT_NE(linear, nullptr);
  for (const auto& [key, value] : linear->counters) EXPECT_NE(key.rfind(kPhaseBytesPrefix, 0), 0u) << key;

  const BenchSpec* fused = all_benchmarks().find("mlp_step/fused_gelu_residual/bf16/d:1600/ff:6400/tok:8192");
  ASSERT_NE(fused, nullptr);
  EXPECT_EQ(fused->counters.count("phase_bytes_elementwise"), 0u);

  const BenchSpec* mixed_linear = all_benchmarks().find("mlp_step/mixed_linear/bf16/d:1600/ff:6400/tok:8192");
  ASSERT_NE(mixed_linear, nullptr);
  EXPECT_DOUBLE_EQ(mixed_linear->counters.at("phase_bytes_cast"), 20480000.0 * 6);  // no biases
  EXPECT_EQ(mixed_linear->counters.count("phase_bytes_elementwise"), 0u);

  int unfused = 0;
  for (const BenchSpec& s : all_benchmarks().all()) {
    if (!is_mlp(s) || s.impl.rfind("unfused", 0) != 0) continue;
    ++unfused;
    EXPECT_GT(s.counters.count("phase_bytes_elementwise"), 0u) << s.name;
  }
  EXPECT_GT(unfused, 10);
}

}  // namespace wflops
