// The FLOP model on hand-checked values.
#include <gtest/gtest.h>

#include "model/flops.hpp"

namespace wflops::flops {

TEST(Flops, GemmIsTwoMNK) {
  EXPECT_DOUBLE_EQ(gemm(1, 1, 1), 2.0);
  EXPECT_DOUBLE_EQ(gemm(2, 3, 4), 48.0);
  // 4096 x 8192 x 4096: 2 * 2^12 * 2^13 * 2^12 = 2^38 = 274,877,906,944
  EXPECT_DOUBLE_EQ(gemm(4096, 8192, 4096), 274877906944.0);
  // 16384^3: 2^43 = 8,796,093,022,208, exact in a double
  EXPECT_DOUBLE_EQ(gemm(16384, 16384, 16384), 8796093022208.0);
}

TEST(Flops, GemmBytesReadEachInputOnceWriteOutputOnce) {
  // bf16 4096 x 8192 x 4096: A 4096*4096*2 + B 4096*8192*2 + C 4096*8192*2 = 32 Mi + 64 Mi + 64 Mi bytes
  EXPECT_DOUBLE_EQ(gemm_bytes(4096, 8192, 4096, 2, 2, 2), (32.0 + 64.0 + 64.0) * 1024 * 1024);
  // fp8 inputs, bf16 output
  EXPECT_DOUBLE_EQ(gemm_bytes(16, 16, 16, 1, 1, 2), 256.0 + 256.0 + 512.0);
}

TEST(Flops, TrainingStepIsSixFlopsPerWeightPerToken) {
  EXPECT_DOUBLE_EQ(linear_forward(10, 3), 60.0);
  EXPECT_DOUBLE_EQ(linear_backward(10, 3), 120.0);
  EXPECT_DOUBLE_EQ(linear_training_step(10, 3), 180.0);
  // C = 6ND: 82e9 params on 150e9 tokens = 7.38e22 FLOPs
  EXPECT_NEAR(training_run(82e9, 150e9), 7.38e22, 1e9);
}

TEST(Flops, ReferenceMlpConfiguration) {
  // d = 1600, d_ff = 6400: 2 * 1600 * 6400 = 20,480,000 weights
  EXPECT_DOUBLE_EQ(mlp_weights(1600, 6400), 20480000.0);
  // a step on 8192 tokens: 6 * 20,480,000 * 8192 = 1,006,632,960,000 FLOPs
  EXPECT_DOUBLE_EQ(mlp_training_step(1600, 6400, 8192), 1006632960000.0);
  EXPECT_DOUBLE_EQ(mlp_forward(1600, 6400, 8192), 335544320000.0);
}

TEST(Flops, AttentionForwardAndBackward) {
  // b=1, h=1, s=2, d=3: 4 * 1 * 1 * 4 * 3 = 48
  EXPECT_DOUBLE_EQ(attention_forward(1, 1, 2, 3, false), 48.0);
  EXPECT_DOUBLE_EQ(attention_forward(1, 1, 2, 3, true), 24.0);
  // b=4, h=16, s=4096, d=128: 4 * 4 * 16 * 4096^2 * 128 = 549,755,813,888
  EXPECT_DOUBLE_EQ(attention_forward(4, 16, 4096, 128, false), 549755813888.0);
  EXPECT_DOUBLE_EQ(attention_backward(4, 16, 4096, 128, false), 2.5 * 549755813888.0);
  EXPECT_DOUBLE_EQ(attention_backward(4, 16, 4096, 128, true), 1.25 * 549755813888.0);
}

TEST(Flops, MixtureOfExperts) {
  EXPECT_DOUBLE_EQ(moe_expert_hidden(2048, 8), 1024.0);
  EXPECT_DOUBLE_EQ(moe_active_expert_weights(2048), 8.0 * 2048 * 2048);
  // 6 * 8 * 2048^2 * 32768 = 6,597,069,766,656
  EXPECT_DOUBLE_EQ(moe_expert_weight_flops(2048, 32768), 6597069766656.0);
  // d * E * G * 14 * T = 2048 * 64 * 8 * 14 * 32768
  EXPECT_DOUBLE_EQ(moe_routing_flops(2048, 64, 8, 32768), 2048.0 * 64 * 8 * 14 * 32768);
  // 12 d^2 * 6 + d E G * 14 with d = 64, E = 8, G = 2: 294,912 + 14,336
  EXPECT_DOUBLE_EQ(moe_block_step_per_token(64, 8, 2), 294912.0 + 14336.0);
}

}  // namespace wflops::flops
