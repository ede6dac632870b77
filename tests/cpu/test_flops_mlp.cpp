// The MLP part of the FLOP model on hand-checked values.
#include <gtest/gtest.h>

#include "model/flops.hpp"

namespace wflops::flops {

TEST(FlopsMlp, ReferenceConfigurationOfTheA100Table) {
  // d = 1600, d_ff = 6400: two matrices of 1600 * 6400 = 10,240,000 weights each.
  EXPECT_DOUBLE_EQ(mlp_weights(1600, 6400), 20480000.0);
  // A step on 8192 tokens: 6 * 20,480,000 * 8192 = 1,006,632,960,000 FLOPs.
  EXPECT_DOUBLE_EQ(mlp_training_step(1600, 6400, 8192), 1006632960000.0);
  EXPECT_DOUBLE_EQ(mlp_training_step(1600, 6400, 8192), 1.00663296e12);
  // Its forward pass is a third: 2 * 20,480,000 * 8192 = 335,544,320,000.
  EXPECT_DOUBLE_EQ(mlp_forward(1600, 6400, 8192), 335544320000.0);
}

TEST(FlopsMlp, SmallMlpByHand) {
  // d = 2, d_ff = 3: 12 weights; on 5 tokens the forward is 2 * 12 * 5 = 120 FLOPs
  // (h = x W1^T: 5 * 3 outputs of 2 multiply-adds = 60; y = a W2^T: 5 * 2 outputs of 3 = 60).
  EXPECT_DOUBLE_EQ(mlp_weights(2, 3), 12.0);
  EXPECT_DOUBLE_EQ(mlp_forward(2, 3, 5), 120.0);
  EXPECT_DOUBLE_EQ(mlp_training_step(2, 3, 5), 360.0);
  // h = 768 (d_ff = 3072) on 2048 tokens: 4,718,592 weights, 6 * 4,718,592 * 2048 = 57,982,058,496.
  EXPECT_DOUBLE_EQ(mlp_training_step(768, 3072, 2048), 57982058496.0);
}

TEST(FlopsMlp, BiasesAreParametersNotWeightFlops) {
  EXPECT_DOUBLE_EQ(mlp_bias_params(1600, 6400), 8000.0);
  EXPECT_DOUBLE_EQ(mlp_bias_params(2, 3), 5.0);
  // Adding biases changes no FLOP count.
  EXPECT_DOUBLE_EQ(mlp_training_step(2, 3, 1), 6.0 * 12.0);
}

TEST(FlopsMlp, SwigluHiddenSizeKeepsTheWeightsOfTheFourTimesMlp) {
  // 8 * 1600 / 3 = 4266.67 -> the next multiple of 64 is 67 * 64 = 4288.
  EXPECT_DOUBLE_EQ(swiglu_hidden(1600), 4288.0);
  // 8 * 768 / 3 = 2048 exactly, already a multiple of 64.
  EXPECT_DOUBLE_EQ(swiglu_hidden(768), 2048.0);
  // 8 * 4096 / 3 = 10922.67 -> 171 * 64 = 10944.
  EXPECT_DOUBLE_EQ(swiglu_hidden(4096), 10944.0);
  EXPECT_DOUBLE_EQ(swiglu_weights(768, 2048), 3.0 * 768 * 2048);
  // With d_ff = 8/3 d exactly, a SwiGLU MLP has the 8 d^2 weights of the 4d MLP.
  EXPECT_DOUBLE_EQ(swiglu_weights(768, swiglu_hidden(768)), mlp_weights(768, 4 * 768));
}

}  // namespace wflops::flops
