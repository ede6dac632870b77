// Host-side pieces of the MoE kernels that decide what runs: the top-k kernel's shared-memory need
// and the expert count it refuses (checked before any launch), and the order in which the grouped
// GEMM's device-built pointer arrays list the experts (the kernel's host twin against the host's
// grouping of equal counts).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "cuda/moe_expert_gemm.hpp"
#include "cuda/moe_layer.hpp"
#include "moe/moe_grouped_pointers.cuh"
#include "moe/moe_topk.cuh"

namespace {

using namespace wflops;

TEST(MoeTopKLimits, SharedMemoryFitsWithoutTheOptIn) {
  // 4 bytes per expert plus 32 floats and 32 ints of per-warp scratch.
  EXPECT_EQ(kernels::moe_top_k_shared_bytes(1), 4u + 256u);
  EXPECT_EQ(kernels::moe_top_k_shared_bytes(4096), 4u * 4096 + 256u);
  EXPECT_EQ(kernels::kMoeTopKSharedLimit, 49152u);
  const int max = kernels::moe_top_k_max_experts();
  EXPECT_EQ(max, (49152 - 256) / 4);  // 12224
  EXPECT_LE(kernels::moe_top_k_shared_bytes(max), kernels::kMoeTopKSharedLimit);
  EXPECT_GT(kernels::moe_top_k_shared_bytes(max + 1), kernels::kMoeTopKSharedLimit);
  EXPECT_EQ(kernels::moe_top_k_unsupported_reason(max, 64), "");
  EXPECT_EQ(kernels::moe_top_k_unsupported_reason(4096, 8), "");
  const std::string why = kernels::moe_top_k_unsupported_reason(max + 1, 8);
  EXPECT_NE(why.find("shared memory"), std::string::npos) << why;
  EXPECT_NE(why.find("12224"), std::string::npos) << why;
  EXPECT_NE(kernels::moe_top_k_unsupported_reason(8, 9), "");  // k > experts
  EXPECT_NE(kernels::moe_top_k_unsupported_reason(8, 0), "");
  // The launcher refuses before touching the device (so this runs without a GPU).
  int expert = 0;
  float score = 0;
  EXPECT_EQ(kernels::moe_top_k(nullptr, 1, max + 1, 1, &expert, &score, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(kernels::moe_top_k(nullptr, 1, 12288, 1, &expert, &score, nullptr), cudaErrorInvalidValue);
}

TEST(MoeTopKLimits, TheWorkloadRefusesTokenChoiceBeyondTheLimit) {
  MoeConfig c;
  c.d = 2048;
  c.granularity = 64;  // expert hidden 128
  c.tokens = 1000;
  c.routing = moe::Routing::token_choice;
  c.impl = MoeGemmImpl::grouped;
  c.experts = 191;  // 12224 experts: exactly at the limit
  EXPECT_EQ(moe_unsupported_reason(c), "");
  c.experts = 192;  // 12288: 48 KiB of probabilities alone, over the limit with the scratch
  const std::string why = moe_unsupported_reason(c);
  EXPECT_NE(why.find("shared memory"), std::string::npos) << why;
  EXPECT_THROW(MoeLayerWorkload{c}, std::runtime_error);
  // Expert choice keeps no token's probabilities in shared memory: not limited this way.
  c.experts = 256;
  c.granularity = 64;
  c.tokens = 8192;
  c.routing = moe::Routing::expert_choice;
  EXPECT_EQ(moe_unsupported_reason(c).find("shared memory"), std::string::npos) << moe_unsupported_reason(c);
}

// The kernel's order (host twin) is the host's grouping order: experts with tokens by count, then
// index, so group g's pointers are the next group_size[g] entries.
TEST(MoeGroupedPointerOrder, KernelOrderIsTheHostGrouping) {
  const std::vector<int> counts = {3, 0, 1, 3, 2, 0, 1, 7};
  const std::vector<int> order = grouped_expert_order(counts);
  EXPECT_EQ(order, (std::vector<int>{2, 6, 4, 0, 3, 7}));
  EXPECT_EQ(kernels::moe_grouped_positions_host(counts), (std::vector<int>{3, -1, 0, 4, 2, -1, 1, 5}));
  EXPECT_TRUE(grouped_expert_order({0, 0}).empty());
  EXPECT_EQ(kernels::moe_grouped_positions_host({0, 0}), (std::vector<int>{-1, -1}));

  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    const int n = 1 + static_cast<int>(rng() % 300);
    std::uniform_int_distribution<int> count(0, trial % 2 ? 3 : 40);  // many ties, or few
    std::vector<int> c(static_cast<std::size_t>(n));
    for (int& x : c) x = count(rng);
    const std::vector<int> o = grouped_expert_order(c);
    const std::vector<int> pos = kernels::moe_grouped_positions_host(c);
    ASSERT_EQ(o.size(), static_cast<std::size_t>(std::count_if(c.begin(), c.end(), [](int x) { return x > 0; })));
    for (std::size_t p = 0; p < o.size(); ++p) {
      EXPECT_EQ(pos[static_cast<std::size_t>(o[p])], static_cast<int>(p)) << "trial " << trial;
      if (p > 0) {
        const int a = o[p - 1], b = o[p];
        EXPECT_TRUE(c[a] < c[b] || (c[a] == c[b] && a < b)) << "trial " << trial;
      }
    }
    for (int e = 0; e < n; ++e) EXPECT_EQ(pos[e] < 0, c[e] == 0) << "trial " << trial;
  }
}

}  // namespace
