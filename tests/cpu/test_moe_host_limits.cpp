// Host-side pieces of the MoE kernels that decide what runs: the top-k kernel's shared-memory need
// and the expert count it refuses (checked before any launch).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/moe_layer.hpp"
#include "moe_topk.cuh"

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

}  // namespace
