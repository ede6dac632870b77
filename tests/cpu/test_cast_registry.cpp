// The cast family's registrations: names, order (each copy before the casts read against it),
// baselines, bytes, dtypes and suites.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_families.hpp"
#include "cuda/cast_workload.hpp"
#include "registry.hpp"

namespace wflops {

namespace {

Registry cast_registry() {
  Registry r;
  add_cast_benchmarks(r);
  return r;
}

}  // namespace

TEST(CastRegistry, NamesFollowTheConventions) {
  const Registry r = cast_registry();
  ASSERT_EQ(r.all().size(), 15u);  // 3 sizes x (1 copy + 4 casts)
  for (const char* name :
       {"cast/d2d_copy/fp32/n:16777216", "cast/vec16/fp32_bf16/n:16777216", "cast/vec16/fp32_fp16/n:67108864",
        "cast/vec16/bf16_fp32/n:268435456", "cast/vec16/fp16_fp32/n:268435456", "cast/vec16/fp32_bf16/n:268435456",
        "cast/d2d_copy/fp32/n:268435456"}) {
    EXPECT_NE(r.find(name), nullptr) << name;
  }
  for (const BenchSpec& s : r.all()) {
    EXPECT_EQ(s.family, "cast");
    EXPECT_EQ(s.name.rfind("cast/" + s.impl + "/", 0), 0u) << s.name;
    EXPECT_TRUE(s.make) << s.name;
  }
}

TEST(CastRegistry, EachCastReadsAgainstTheEarlierCopyOfTheSameSize) {
  const Registry r = cast_registry();
  std::map<std::string, std::size_t> position;
  for (std::size_t i = 0; i < r.all().size(); ++i) position[r.all()[i].name] = i;
  int casts = 0;
  for (const BenchSpec& s : r.all()) {
    if (s.impl == "d2d_copy") {
      EXPECT_TRUE(s.baseline.empty());
      continue;
    }
    ++casts;
    EXPECT_EQ(s.baseline, "cast/d2d_copy/fp32/" + s.shape) << s.name;
    ASSERT_TRUE(position.count(s.baseline)) << s.baseline;
    EXPECT_LT(position[s.baseline], position[s.name]) << s.name;
    // The baseline runs wherever the cast does.
    const BenchSpec* base = r.find(s.baseline);
    for (const std::string& suite : s.suites) EXPECT_TRUE(base->suites.count(suite)) << s.name << " " << suite;
  }
  EXPECT_EQ(casts, 12);
}

TEST(CastRegistry, BytesAndDtypes) {
  const Registry r = cast_registry();
  const BenchSpec* to_bf16 = r.find("cast/vec16/fp32_bf16/n:268435456");
  ASSERT_NE(to_bf16, nullptr);
  EXPECT_EQ(to_bf16->dtype, DType::bf16);
  EXPECT_DOUBLE_EQ(to_bf16->bytes, 268435456.0 * 6);
  EXPECT_DOUBLE_EQ(to_bf16->flops, 0.0);
  const BenchSpec* from_fp16 = r.find("cast/vec16/fp16_fp32/n:16777216");
  ASSERT_NE(from_fp16, nullptr);
  EXPECT_EQ(from_fp16->dtype, DType::fp16);
  EXPECT_DOUBLE_EQ(from_fp16->bytes, 16777216.0 * 6);
  const BenchSpec* copy = r.find("cast/d2d_copy/fp32/n:67108864");
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(copy->dtype, DType::fp32);
  EXPECT_DOUBLE_EQ(copy->bytes, 67108864.0 * 8);
  EXPECT_DOUBLE_EQ(copy->flops, 0.0);
}

TEST(CastRegistry, Suites) {
  const Registry r = cast_registry();
  EXPECT_EQ(r.suite("cast").size(), 15u);
  EXPECT_EQ(r.suite("full").size(), 15u);
  std::vector<std::string> quick;
  for (const BenchSpec* s : r.suite("quick")) quick.push_back(s->name);
  EXPECT_EQ(quick, (std::vector<std::string>{"cast/d2d_copy/fp32/n:268435456", "cast/vec16/fp32_bf16/n:268435456"}));
}

TEST(CastRegistry, BadCastsAreRefusedWithAReason) {
  // Thrown before any CUDA call, so measure() reports it as the benchmark's error.
  try {
    make_cast_workload(DType::fp16, DType::bf16, 1024);
    FAIL() << "fp16 -> bf16 is not a cast this family has";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("fp16 to bf16"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_cast_workload(DType::fp32, DType::fp8_e4m3, 1024), std::invalid_argument);
  EXPECT_THROW(make_cast_workload(DType::fp32, DType::bf16, 0), std::invalid_argument);
  EXPECT_THROW(make_copy_workload(0), std::invalid_argument);
}

}  // namespace wflops
