// The MoE part of the FLOP model, against values worked out by hand.
#include <gtest/gtest.h>

#include "model/flops.hpp"

namespace {

using namespace wflops::flops;

TEST(FlopsMoe, ExpertsAndActiveWeights) {
  // d = 2048, E = 64, G = 8: 512 experts of hidden 4 * 2048 / 8 = 1024.
  EXPECT_DOUBLE_EQ(moe_expert_count(64, 8), 512.0);
  EXPECT_DOUBLE_EQ(moe_expert_hidden(2048, 8), 1024.0);
  // Active expert weights per token: G experts * 2 * d * d_expert = 8 * 2 * 2048 * 1024 = 8 * 2048^2.
  EXPECT_DOUBLE_EQ(moe_active_expert_weights(2048), 33554432.0);
  EXPECT_DOUBLE_EQ(8 * 2 * 2048 * moe_expert_hidden(2048, 8), moe_active_expert_weights(2048));
  // Routing FLOPs per token: d * E * G * 14 = 2048 * 512 * 14.
  EXPECT_DOUBLE_EQ(moe_routing_flops(2048, 64, 8, 1), 14680064.0);
}

TEST(FlopsMoe, ConfigValidation) {
  EXPECT_EQ(moe_config_error(2048, 64, 8), "");
  EXPECT_EQ(moe_config_error(768, 8, 64), "");                                                    // 3072 / 64 = 48
  EXPECT_EQ(moe_config_error(768, 8, 128), "");                                                   // 24
  EXPECT_NE(moe_config_error(768, 8, 256).find("not a whole multiple of 8"), std::string::npos);  // 12
  EXPECT_NE(moe_config_error(100, 8, 4).find("not a whole multiple of 8"), std::string::npos);    // 100
  EXPECT_NE(moe_config_error(8, 1, 3).find("not a whole number"), std::string::npos);             // 32 / 3
  EXPECT_NE(moe_config_error(2048, 0, 8), "");
  EXPECT_NE(moe_config_error(2048, 64, 0), "");
  EXPECT_NE(moe_config_error(4, 1, 1), "");
}

TEST(FlopsMoe, ExpertChoiceCapacity) {
  // 256 / E tokens per group of 256 per expert: T / E per expert overall (E = 64: 4 per group).
  EXPECT_EQ(moe_expert_choice_error(64, 32768), "");
  EXPECT_DOUBLE_EQ(moe_expert_choice_capacity(64, 32768), 512.0);
  EXPECT_DOUBLE_EQ(32768.0 / 256 * (256.0 / 64), moe_expert_choice_capacity(64, 32768));
  // N experts * T/E tokens = T*G assignments, as top-G token choice.
  EXPECT_DOUBLE_EQ(moe_expert_count(64, 8) * moe_expert_choice_capacity(64, 32768), moe_assignments(8, 32768));
  EXPECT_DOUBLE_EQ(moe_assignments(8, 32768), 262144.0);
  EXPECT_NE(moe_expert_choice_error(48, 1024).find("divide 256"), std::string::npos);
  EXPECT_NE(moe_expert_choice_error(64, 1000).find("multiple of 256"), std::string::npos);
}

TEST(FlopsMoe, RouterAndBytes) {
  // 2 * T * d * N = 2 * 32768 * 2048 * 512.
  EXPECT_DOUBLE_EQ(moe_router_forward_flops(2048, 64, 8, 32768), 68719476736.0);
  // Permute: 2 * T*G * d * 2 bytes = 2 * 262144 * 2048 * 2 = 2^31.
  EXPECT_DOUBLE_EQ(moe_permute_bytes(2048, 8, 32768, 2), 2147483648.0);
  // Combine: (T*G + T) * d * 2 = 294912 * 4096.
  EXPECT_DOUBLE_EQ(moe_combine_bytes(2048, 8, 32768, 2), 1207959552.0);
  // backward: (2 * 262,144 + 32,768) rows of 2048 bf16 = 557,056 * 4096 = 2,281,701,376
  EXPECT_DOUBLE_EQ(moe_combine_backward_bytes(2048, 8, 32768, 2), 2281701376.0);
  // Step: 2 * (2*32768*2048 + 512*2048 + 8*2048^2*64) * 2 = 4 * 2,282,749,952.
  EXPECT_DOUBLE_EQ(moe_step_bytes(2048, 64, 8, 32768, 2), 9130999808.0);
}

}  // namespace
