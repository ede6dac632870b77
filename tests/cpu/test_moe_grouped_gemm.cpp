// Host side of our grouped MoE GEMM (kernels/moe/moe_grouped_gemm.cu): the tile map (its host version is
// what the GPU test compares the device map with), the grid bound, the refusals, and the fp64
// references on cases worked out by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <utility>
#include <vector>

#include "moe/moe_grouped_gemm.cuh"

namespace {

using namespace wflops::kernels;

TEST(MoeGroupedGemmHost, TileMapOfRaggedExperts) {
  // Experts with 0, 1, 17 and 300 rows: 0 + 1 + 1 + 3 tiles of 128 rows, never straddling experts.
  const std::vector<int> offsets = {0, 0, 1, 18, 318};
  const std::vector<std::pair<int, int>> want = {{1, 0}, {2, 1}, {3, 18}, {3, 146}, {3, 274}};
  EXPECT_EQ(moe_grouped_tile_map_host(offsets), want);
  EXPECT_EQ(moe_grouped_max_tiles(318, 4), 3 + 4);
  EXPECT_EQ(moe_grouped_max_tiles(0, 4), 4);
  EXPECT_EQ(moe_grouped_max_tiles(256, 1), 3);
  EXPECT_EQ(moe_grouped_tile_map_ints(7), 15);
  EXPECT_TRUE(moe_grouped_tile_map_host({0, 0, 0}).empty());
}

// Any split of the rows: the tiles cover every row exactly once, each inside its expert, and there
// are never more than the grid's bound.
TEST(MoeGroupedGemmHost, TileMapCoversEveryRowOnceWithinTheBound) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int experts = 1 + static_cast<int>(rng() % 70);
    std::vector<int> offsets = {0};
    for (int e = 0; e < experts; ++e) {
      const int kind = static_cast<int>(rng() % 4);  // empty, tiny, around a tile, large
      const int rows = kind == 0   ? 0
                       : kind == 1 ? 1 + static_cast<int>(rng() % 3)
                       : kind == 2 ? 120 + static_cast<int>(rng() % 20)
                                   : static_cast<int>(rng() % 1000);
      offsets.push_back(offsets.back() + rows);
    }
    const auto tiles = moe_grouped_tile_map_host(offsets);
    ASSERT_LE(static_cast<long>(tiles.size()), moe_grouped_max_tiles(offsets.back(), experts));
    std::vector<int> seen(static_cast<std::size_t>(offsets.back()), 0);
    for (const auto& [e, row0] : tiles) {
      ASSERT_GE(row0, offsets[e]);
      ASSERT_LT(row0, offsets[e + 1]);
      for (int r = row0; r < std::min(row0 + kGroupedTileRows, offsets[e + 1]); ++r) ++seen[r];
    }
    for (int s : seen) ASSERT_EQ(s, 1);
  }
}

TEST(MoeGroupedGemmHost, RefusesShapesItCannotRun) {
  EXPECT_EQ(moe_grouped_gemm_unsupported_reason(GroupedGemmKind::rows_x_wt, 2048, 256, 512, 1000), "");
  EXPECT_EQ(moe_grouped_gemm_unsupported_reason(GroupedGemmKind::wgrad, 256, 2048, 512, 0), "");
  EXPECT_NE(moe_grouped_gemm_unsupported_reason(GroupedGemmKind::rows_x_w, 100, 256, 4, 10).find("multiple of 8"),
            std::string::npos);
  EXPECT_NE(moe_grouped_gemm_unsupported_reason(GroupedGemmKind::wgrad, 64, 0, 4, 0).find("multiple of 8"),
            std::string::npos);
  EXPECT_NE(moe_grouped_gemm_unsupported_reason(GroupedGemmKind::rows_x_wt, 64, 64, 0, 10), "");
  EXPECT_NE(moe_grouped_gemm_unsupported_reason(GroupedGemmKind::wgrad, 64, 64, 70000, 0).find("65535"),
            std::string::npos);
  // The launch wrappers refuse such shapes (and the wrong kind) before touching the GPU.
  alignas(16) static char buf[64];
  static int ints[4];
  EXPECT_EQ(moe_grouped_gemm_rows(GroupedGemmKind::rows_x_wt, buf, buf, 8, buf, ints, ints, 1, 100, 64, 1, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(moe_grouped_gemm_rows(GroupedGemmKind::wgrad, buf, buf, 8, buf, ints, ints, 1, 64, 64, 1, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(moe_grouped_gemm_rows(GroupedGemmKind::rows_x_w, buf + 2, buf, 8, buf, ints, ints, 1, 64, 64, 1, nullptr),
            cudaErrorInvalidValue);  // x not 16-byte aligned
  EXPECT_EQ(moe_grouped_gemm_wgrad(buf, buf, buf, ints, 64, 12, 1, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(moe_grouped_tile_map(ints, 0, ints, 1, nullptr), cudaErrorInvalidValue);
}

// Two experts, expert 0 with row 0 and expert 1 with rows 1 and 2; k = n = 2.
TEST(MoeGroupedGemmHost, RowReferencesByHand) {
  const std::vector<int> offsets = {0, 1, 3};
  const std::vector<double> x = {1, 2, 3, 4, 5, 6};
  const std::vector<double> w = {1, 0, 0, 1,   // expert 0: the identity
                                 1, 1, 2, 0};  // expert 1: [[1, 1], [2, 0]]
  std::vector<double> c;
  // Forward, W_e [n, k]: row 1 = (3*1 + 4*1, 3*2 + 4*0).
  moe_grouped_gemm_rows_reference(GroupedGemmKind::rows_x_wt, x, w, offsets, 2, 2, c);
  EXPECT_EQ(c, (std::vector<double>{1, 2, 7, 6, 11, 10}));
  // Input gradient, W_e [k, n]: row 1 = (3*1 + 4*2, 3*1 + 4*0).
  moe_grouped_gemm_rows_reference(GroupedGemmKind::rows_x_w, x, w, offsets, 2, 2, c);
  EXPECT_EQ(c, (std::vector<double>{1, 2, 11, 3, 17, 5}));
}

// Expert 0 has no row (its gradient is zeros), expert 1 rows 0 and 1; m = 2, n = 1.
TEST(MoeGroupedGemmHost, WeightGradientReferenceByHand) {
  const std::vector<int> offsets = {0, 0, 2};
  std::vector<double> c(4, 99.0);
  moe_grouped_gemm_wgrad_reference({1, 2, 3, 4}, {5, 6}, offsets, 2, 1, c);
  EXPECT_EQ(c, (std::vector<double>{0, 0, 1 * 5 + 3 * 6, 2 * 5 + 4 * 6}));
}

}  // namespace
