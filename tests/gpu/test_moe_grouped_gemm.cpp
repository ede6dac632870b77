// Our grouped MoE GEMM kernels alone (kernels/moe/moe_grouped_gemm.cu) against the fp64 host reference,
// every output element, with ragged experts: no row, 1 row, 17 rows, 300 rows (three tiles, the last
// partial), again no row, and exactly one tile; reduction lengths and widths that are not multiples
// of the 32-wide k-step or the 128-wide tiles. Outputs are poisoned with NaN first and followed by a
// guard region that must stay untouched; the device tile map must equal the host's. Skipped with a
// reason where there is no GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "gpu_test_util.hpp"
#include "moe/moe_grouped_gemm.cuh"
#include "numeric_formats.hpp"
#include "reference/verify_error.hpp"

namespace wflops {

namespace {

using kernels::GroupedGemmKind;

const std::vector<int> kRaggedSizes = {0, 1, 17, 300, 0, 128};
constexpr std::uint16_t kPoison = 0xFFFF;  // a NaN; no finite computation writes these bits
constexpr std::size_t kGuardElems = 4096;  // after each output: must keep the poison

std::vector<int> offsets_of(const std::vector<int>& sizes) {
  std::vector<int> offsets = {0};
  for (int s : sizes) offsets.push_back(offsets.back() + s);
  return offsets;
}

DeviceBuffer upload(const void* data, std::size_t bytes) {
  DeviceBuffer b(bytes);
  CUDA_CHECK(cudaMemcpy(b.get(), data, bytes, cudaMemcpyHostToDevice));
  return b;
}

// Random values j/64 with 1 <= |j| <= 64: exact in bf16 (and never zero), for the host reference
// and uploaded as bf16 for the kernel.
struct RandomBf16 {
  std::vector<double> values;
  DeviceBuffer device;
};
RandomBf16 random_bf16(std::size_t count, std::mt19937& rng) {
  RandomBf16 r;
  std::vector<std::uint16_t> bits;
  std::uniform_int_distribution<int> pick(1, 64);
  for (std::size_t i = 0; i < count; ++i) {
    const float v = static_cast<float>(pick(rng) * (rng() % 2 ? 1 : -1)) / 64.0f;
    std::uint32_t u = 0;
    std::memcpy(&u, &v, sizeof u);
    r.values.push_back(v);
    bits.push_back(static_cast<std::uint16_t>(u >> 16));  // exact: the low 16 bits are zero
  }
  r.device = upload(bits.data(), bits.size() * 2);
  return r;
}

// An output of `elems` bf16 values plus the guard, all poisoned.
DeviceBuffer poisoned_output(std::size_t elems) {
  DeviceBuffer b((elems + kGuardElems) * 2);
  CUDA_CHECK(cudaMemset(b.get(), 0xFF, b.bytes()));
  return b;
}

std::vector<std::uint16_t> download(const DeviceBuffer& b) {
  std::vector<std::uint16_t> out(b.bytes() / 2);
  CUDA_CHECK(cudaMemcpy(out.data(), b.get(), b.bytes(), cudaMemcpyDeviceToHost));
  return out;
}

// Experts of the given row counts: their row offsets on the host and on the device, how many
// there are, and their rows in all.
struct Experts {
  explicit Experts(const std::vector<int>& sizes)
      : offsets(offsets_of(sizes)),
        count(static_cast<int>(sizes.size())),
        rows(static_cast<std::size_t>(offsets.back())),
        device_offsets(upload(offsets.data(), offsets.size() * sizeof(int))) {}
  std::vector<int> offsets;
  int count;
  std::size_t rows;
  DeviceBuffer device_offsets;
};

// The device's tile map of the experts, built (kernels::moe_grouped_tile_map) into a buffer
// poisoned first, and its capacity.
struct TileMap {
  long max_tiles;
  DeviceBuffer map;
};
TileMap build_tile_map(const Experts& e) {
  TileMap t{kernels::moe_grouped_max_tiles(static_cast<long>(e.rows), e.count), DeviceBuffer()};
  t.map = DeviceBuffer(static_cast<std::size_t>(kernels::moe_grouped_tile_map_ints(t.max_tiles)) * sizeof(int));
  CUDA_CHECK(cudaMemset(t.map.get(), 0xFF, t.map.bytes()));
  CUDA_CHECK(kernels::moe_grouped_tile_map(e.device_offsets.as<int>(), e.count, t.map.as<int>(), t.max_tiles, nullptr));
  return t;
}

// Every element finite and within bf16 rounding of the reference (plus a little fp32 accumulation
// error), the relative error of the whole below 1e-2, and the guard untouched.
void expect_matches(const std::vector<std::uint16_t>& got, const std::vector<double>& ref) {
  ASSERT_EQ(got.size(), ref.size() + kGuardElems);
  ErrorSum error;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double g = decode_bf16(got[i]);
    ASSERT_TRUE(std::isfinite(g)) << "element " << i << " not written or not finite";
    error.add(g, ref[i]);
    if (std::abs(g - ref[i]) > 4e-3 * std::abs(ref[i]) + 1e-4 && bad++ < 5) {
      ADD_FAILURE() << "element " << i << ": " << g << " vs " << ref[i];
    }
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_LT(error.relative(), 1e-2);
  for (std::size_t i = ref.size(); i < got.size(); ++i) {
    ASSERT_EQ(got[i], kPoison) << "written past the output, " << i - ref.size() << " elements after its end";
  }
}

// The fixture of a parameterised test on the experts of kRaggedSizes: it skips the test without a
// GPU (WFLOPS_REQUIRE_GPU), then makes the experts e; c is the case.
template <class Case>
class RaggedExpertsTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    WFLOPS_REQUIRE_GPU();
    e.emplace(kRaggedSizes);
  }

  const Case c = this->GetParam();
  std::optional<const Experts> e;
};

struct RowCase {
  GroupedGemmKind kind;
  int k, n;
};

class GroupedRowProducts : public RaggedExpertsTest<RowCase> {};

TEST_P(GroupedRowProducts, MatchReferenceWithRaggedExperts) {
  const std::size_t k = static_cast<std::size_t>(c.k), n = static_cast<std::size_t>(c.n);
  DeviceBuffer dc = poisoned_output(e->rows * n);
  std::mt19937 rng(static_cast<unsigned>(c.k * 1000 + c.n));
  const RandomBf16 x = random_bf16(e->rows * k, rng);
  const RandomBf16 w = random_bf16(static_cast<std::size_t>(e->count) * n * k, rng);

  const TileMap tiles = build_tile_map(*e);
  CUDA_CHECK(kernels::moe_grouped_gemm_rows(c.kind, x.device.get(), w.device.get(), static_cast<long>(n * k), dc.get(),
                                            e->device_offsets.as<int>(), tiles.map.as<int>(), tiles.max_tiles, c.n, c.k,
                                            e->count, nullptr));
  CUDA_CHECK(cudaDeviceSynchronize());

  // The device's tile map is the host's.
  std::vector<int> table(tiles.map.bytes() / sizeof(int));
  CUDA_CHECK(cudaMemcpy(table.data(), tiles.map.get(), tiles.map.bytes(), cudaMemcpyDeviceToHost));
  const auto want = kernels::moe_grouped_tile_map_host(e->offsets);
  ASSERT_EQ(table[0], static_cast<int>(want.size()));
  for (std::size_t t = 0; t < want.size(); ++t) {
    EXPECT_EQ(table[1 + 2 * t], want[t].first) << "tile " << t;
    EXPECT_EQ(table[2 + 2 * t], want[t].second) << "tile " << t;
  }

  std::vector<double> ref;
  kernels::moe_grouped_gemm_rows_reference(c.kind, x.values, w.values, e->offsets, c.n, c.k, ref);
  expect_matches(download(dc), ref);
}

// k: 72 and 264 are not multiples of the 32-wide k-step; n: 136 = one full column tile and 8 more.
INSTANTIATE_TEST_SUITE_P(Kinds, GroupedRowProducts,
                         ::testing::Values(RowCase{GroupedGemmKind::rows_x_wt, 72, 136},
                                           RowCase{GroupedGemmKind::rows_x_wt, 264, 40},
                                           RowCase{GroupedGemmKind::rows_x_w, 72, 136},
                                           RowCase{GroupedGemmKind::rows_x_w, 264, 40}),
                         [](const ::testing::TestParamInfo<RowCase>& p) {
                           return std::string(p.param.kind == GroupedGemmKind::rows_x_wt ? "forward" : "input_grad") +
                                  "_k" + std::to_string(p.param.k) + "_n" + std::to_string(p.param.n);
                         });

struct WgradCase {
  int m, n;
};

class GroupedWeightGradient : public RaggedExpertsTest<WgradCase> {};

// The reduction runs over each expert's rows (0, 1, 17, 300, 0, 128: never a whole number of 32-row
// steps except the last); experts without a row get exact zeros.
TEST_P(GroupedWeightGradient, MatchesReferenceAndZeroesEmptyExperts) {
  const std::size_t m = static_cast<std::size_t>(c.m), n = static_cast<std::size_t>(c.n);
  std::mt19937 rng(static_cast<unsigned>(c.m * 1000 + c.n + 1));
  const RandomBf16 x = random_bf16(e->rows * m, rng);
  const RandomBf16 y = random_bf16(e->rows * n, rng);
  DeviceBuffer dc = poisoned_output(static_cast<std::size_t>(e->count) * m * n);

  CUDA_CHECK(kernels::moe_grouped_gemm_wgrad(x.device.get(), y.device.get(), dc.get(), e->device_offsets.as<int>(), c.m,
                                             c.n, e->count, nullptr));
  CUDA_CHECK(cudaDeviceSynchronize());

  const std::vector<std::uint16_t> got = download(dc);
  std::vector<double> ref;
  kernels::moe_grouped_gemm_wgrad_reference(x.values, y.values, e->offsets, c.m, c.n, ref);
  expect_matches(got, ref);
  for (int expert = 0; expert < e->count; ++expert) {
    if (kRaggedSizes[expert] != 0) continue;
    for (std::size_t i = 0; i < m * n; ++i) {
      ASSERT_EQ(got[static_cast<std::size_t>(expert) * m * n + i], 0u)
          << "expert " << expert << " (no row), element " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, GroupedWeightGradient, ::testing::Values(WgradCase{136, 72}, WgradCase{40, 264}),
                         [](const ::testing::TestParamInfo<WgradCase>& p) {
                           return "m" + std::to_string(p.param.m) + "_n" + std::to_string(p.param.n);
                         });

// Many experts of random sizes through all three kinds: the tile map's scan over more experts than
// threads per expert range, and tiles of many experts in one grid.
TEST(GroupedGemmManyExperts, AllKindsMatchReference) {
  WFLOPS_REQUIRE_GPU();
  std::mt19937 rng(11);
  std::vector<int> sizes;
  for (int e = 0; e < 1500; ++e) sizes.push_back(e % 7 == 0 ? 0 : static_cast<int>(rng() % 40));
  const Experts e(sizes);
  const int k = 32, n = 16;
  const RandomBf16 x = random_bf16(e.rows * k, rng);
  const RandomBf16 w = random_bf16(static_cast<std::size_t>(e.count) * n * k, rng);
  const RandomBf16 y = random_bf16(e.rows * n, rng);
  const TileMap tiles = build_tile_map(e);
  for (GroupedGemmKind kind : {GroupedGemmKind::rows_x_wt, GroupedGemmKind::rows_x_w}) {
    SCOPED_TRACE(kind == GroupedGemmKind::rows_x_wt ? "forward" : "input grad");
    DeviceBuffer dc = poisoned_output(e.rows * n);
    CUDA_CHECK(kernels::moe_grouped_gemm_rows(kind, x.device.get(), w.device.get(), static_cast<long>(n) * k, dc.get(),
                                              e.device_offsets.as<int>(), tiles.map.as<int>(), tiles.max_tiles, n, k,
                                              e.count, nullptr));
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<double> ref;
    kernels::moe_grouped_gemm_rows_reference(kind, x.values, w.values, e.offsets, n, k, ref);
    expect_matches(download(dc), ref);
  }
  SCOPED_TRACE("weight grad");
  DeviceBuffer dc = poisoned_output(static_cast<std::size_t>(e.count) * k * n);
  CUDA_CHECK(kernels::moe_grouped_gemm_wgrad(x.device.get(), y.device.get(), dc.get(), e.device_offsets.as<int>(), k, n,
                                             e.count, nullptr));
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<double> ref;
  kernels::moe_grouped_gemm_wgrad_reference(x.values, y.values, e.offsets, k, n, ref);
  expect_matches(download(dc), ref);
}

}  // namespace

}  // namespace wflops
