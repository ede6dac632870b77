// The attention part of the FLOP model on hand-checked values.
#include <gtest/gtest.h>

#include "model/flops.hpp"

namespace wflops::flops {

TEST(FlopsAttention, PublicConvention) {
  // b=4, h=16, s=4096, d=128: 4 * 4 * 16 * 4096^2 * 128 = 549,755,813,888; causal half.
  EXPECT_DOUBLE_EQ(attention_forward(4, 16, 4096, 128, false), 549755813888.0);
  EXPECT_DOUBLE_EQ(attention_forward(4, 16, 4096, 128, true), 274877906944.0);
  EXPECT_DOUBLE_EQ(attention_backward(4, 16, 4096, 128, false), 1374389534720.0);
}

TEST(FlopsAttention, UnfusedComputesTheWholeSquare) {
  // b=1, h=2, s=8, d=4: forward 4 * 2 * 64 * 4 = 2048, backward twice that.
  EXPECT_DOUBLE_EQ(attention_unfused_forward_matmul(1, 2, 8, 4), 2048.0);
  EXPECT_DOUBLE_EQ(attention_unfused_backward_matmul(1, 2, 8, 4), 4096.0);
  // The backward without recompute is 2/2.5 of the convention's figure.
  EXPECT_DOUBLE_EQ(attention_unfused_backward_matmul(4, 16, 4096, 128),
                   0.8 * attention_backward(4, 16, 4096, 128, false));
}

TEST(FlopsAttention, TiledScoresCountComputedTiles) {
  EXPECT_DOUBLE_EQ(attention_tiled_scores(128, 64, 64, false), 16384.0);
  // s=128 in 64x64 tiles, causal: tile row 0 computes 1 tile (64x64), row 1 two (64x128):
  // 4096 + 8192 = 12288 = 0.75 s^2 (the half convention says 8192).
  EXPECT_DOUBLE_EQ(attention_tiled_scores(128, 64, 64, true), 12288.0);
  // Ragged s=100: rows 0..63 x 64 keys + rows 64..99 (36) x all 100 keys = 4096 + 3600.
  EXPECT_DOUBLE_EQ(attention_tiled_scores(100, 64, 64, true), 7696.0);
  // s=4096, 64x64: sum_i 64 * 64 (i+1), i < 64 = 4096 * 2080 = 8,519,680 (= s^2/2 * 65/64).
  EXPECT_DOUBLE_EQ(attention_tiled_scores(4096, 64, 64, true), 8519680.0);
  // Query tiles of 32 against key tiles of 64: rows 0..31 -> 64 keys, rows 32..63 -> 64 keys,
  // rows 64..95 -> 128 keys, rows 96..127 -> 128: 32 * (64 + 64 + 128 + 128) = 12288.
  EXPECT_DOUBLE_EQ(attention_tiled_scores(128, 32, 64, true), 12288.0);
}

TEST(FlopsAttention, FusedMatmulFlops) {
  // Not causal: exactly the convention (forward 4d per score, backward 10d = 2.5x).
  EXPECT_DOUBLE_EQ(attention_fused_forward_matmul(4, 16, 4096, 128, false, 64, 64), 549755813888.0);
  EXPECT_DOUBLE_EQ(attention_fused_backward_matmul(4, 16, 4096, 128, false, 64, 64), 1374389534720.0);
  // Causal s=128, d=2, b=h=1: 4 * 2 * 12288 = 98304; backward 10 * 2 * 12288 = 245760.
  EXPECT_DOUBLE_EQ(attention_fused_forward_matmul(1, 1, 128, 2, true, 64, 64), 98304.0);
  EXPECT_DOUBLE_EQ(attention_fused_backward_matmul(1, 1, 128, 2, true, 64, 64), 245760.0);
}

TEST(FlopsAttention, ScoreAndTensorBytes) {
  // b=4, h=16, s=4096, bf16: 64 * 4096^2 * 2 = 2 GiB per score matrix batch.
  EXPECT_DOUBLE_EQ(attention_score_bytes(4, 16, 4096, 2), 2.0 * 1024 * 1024 * 1024);
  // b=h=1, s=2, d=4, bf16: tensors 16 bytes; forward 4 * 16 + 2 * 4 = 72; backward 8 * 16 + 8 = 136.
  EXPECT_DOUBLE_EQ(attention_forward_bytes(1, 1, 2, 4, 2), 72.0);
  EXPECT_DOUBLE_EQ(attention_backward_bytes(1, 1, 2, 4, 2), 136.0);
}

TEST(FlopsAttention, ShareOfTheStep) {
  // H = 2048, T = 16384: weights 6 * 12 * 2048^2 * 16384 = 4,947,802,324,992.
  EXPECT_DOUBLE_EQ(layer_weight_step_flops(2048, 16384), 4947802324992.0);
  // s = 4096: 14 T s H = 14 * 16384 * 4096 * 2048 = 1,924,145,348,608; causal half.
  EXPECT_DOUBLE_EQ(layer_attention_step_flops(2048, 4096, 16384, false), 1924145348608.0);
  EXPECT_DOUBLE_EQ(layer_attention_step_flops(2048, 4096, 16384, true), 962072674304.0);
  // 14 s / (14 s + 72 H) = 57344 / 204800 = 0.28; causal 28672 / 176128 = 7/43.
  EXPECT_DOUBLE_EQ(attention_flop_share(2048, 4096, false), 0.28);
  EXPECT_NEAR(attention_flop_share(2048, 4096, true), 7.0 / 43.0, 1e-15);
  // Grows with s: at s = 16384, 14*16384 / (14*16384 + 72*2048) = 229376 / 376832 = 14/23.
  EXPECT_NEAR(attention_flop_share(2048, 16384, false), 14.0 / 23.0, 1e-15);
}

TEST(FlopsAttention, TimeShare) {
  // H = 2048, s = 4096: weight FLOPs = 9 F (F = attention forward), tau 700 / 350 / 280:
  // t_a = F (1/350 + 2.5/280) = 66 F / 5600, t_w = 9 F / 700 = 72 F / 5600 -> 66 / 138 = 11/23.
  EXPECT_NEAR(attention_time_share(2048, 4096, false, 700, 350, 280), 11.0 / 23.0, 1e-12);
  // Equal rates give the FLOP share.
  EXPECT_NEAR(attention_time_share(2048, 4096, false, 500, 500, 500), 0.28, 1e-12);
}

}  // namespace wflops::flops
