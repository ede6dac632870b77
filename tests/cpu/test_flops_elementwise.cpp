// The FLOP model's byte counts of the elementwise passes, casts and the optimizer, on hand-checked
// values.
#include <gtest/gtest.h>

#include "model/flops.hpp"

namespace wflops::flops {

TEST(FlopsElementwise, BiasAddReadsMatrixAndBiasWritesMatrix) {
  // 2 x 3 fp32: read 6 + 3, write 6 elements = 15 * 4 = 60 bytes
  EXPECT_DOUBLE_EQ(bias_add_bytes(2, 3, 4), 60.0);
  // bf16 8192 x 6400: (2 * 52,428,800 + 6400) * 2 = 209,728,000
  EXPECT_DOUBLE_EQ(bias_add_bytes(8192, 6400, 2), 209728000.0);
}

TEST(FlopsElementwise, ActivationAndResidual) {
  // forward: read 10, write 10 bf16 = 40 bytes; backward and residual: 3 arrays of 10 = 60
  EXPECT_DOUBLE_EQ(activation_forward_bytes(10, 2), 40.0);
  EXPECT_DOUBLE_EQ(activation_backward_bytes(10, 2), 60.0);
  EXPECT_DOUBLE_EQ(residual_add_bytes(10, 2), 60.0);
  // fp32, 8192 tokens x 1600: 13,107,200 elements x 3 x 4 = 157,286,400
  EXPECT_DOUBLE_EQ(residual_add_bytes(8192.0 * 1600, 4), 157286400.0);
}

TEST(FlopsElementwise, BiasGradReadsGradientWritesOneRow) {
  // bf16 d of 4 x 5 read (40 bytes), fp32 db of 5 written (20 bytes)
  EXPECT_DOUBLE_EQ(bias_grad_bytes(4, 5, 2, 4), 60.0);
  // same dtype db: 40 + 10
  EXPECT_DOUBLE_EQ(bias_grad_bytes(4, 5, 2, 2), 50.0);
}

TEST(FlopsElementwise, CastAndCopy) {
  // fp32 -> bf16: 6 bytes per element; 2^28 elements = 1,610,612,736 bytes
  EXPECT_DOUBLE_EQ(cast_bytes(268435456, 4, 2), 1610612736.0);
  EXPECT_DOUBLE_EQ(cast_bytes(3, 2, 4), 18.0);
  // a cast moves the same bytes either way
  EXPECT_DOUBLE_EQ(cast_bytes(1000, 4, 2), cast_bytes(1000, 2, 4));
  // fp32 copy of 2^28: 2 * 4 * 2^28 = 2 GiB
  EXPECT_DOUBLE_EQ(copy_bytes(268435456, 4), 2147483648.0);
  // a copy is a cast to the same type
  EXPECT_DOUBLE_EQ(copy_bytes(77, 4), cast_bytes(77, 4, 4));
}

TEST(FlopsElementwise, AdamWMovesTwentyEightBytesPerParameter) {
  EXPECT_DOUBLE_EQ(adamw_bytes(1), 28.0);
  // the reference MLP's 20,480,000 weights: 573,440,000 bytes
  EXPECT_DOUBLE_EQ(adamw_bytes(20480000), 573440000.0);
}

TEST(FlopsElementwise, SwigluAndMultiply) {
  EXPECT_DOUBLE_EQ(multiply_bytes(10, 2), 60.0);          // read 2 x 10, write 10 bf16
  EXPECT_DOUBLE_EQ(swiglu_forward_bytes(10, 2), 60.0);    // read g, u; write a
  EXPECT_DOUBLE_EQ(swiglu_backward_bytes(10, 2), 100.0);  // read da, g, u; write dg, du
}

// The reference configuration d = 1600, d_ff = 6400, T = 8192, fp16, worked by hand pass by pass.
constexpr double kD = 1600, kFf = 6400, kT = 8192;
constexpr double kWeightsAndBiases = 2 * 1600 * 6400 + 6400 + 1600;  // 20,488,000

TEST(FlopsElementwise, MixedUnfusedReluResidualStepPhases) {
  MlpPasses p;
  p.bias = p.activation = p.residual = p.mixed = true;
  const MlpPhaseBytes b = mlp_phase_bytes(kD, kFf, kT, 2, kWeightsAndBiases, p);
  // forward: bias_add [8192, 6400] 209,728,000 + relu 2 * 52,428,800 * 2 = 209,715,200
  //        + bias_add [8192, 1600] (2 * 13,107,200 + 1600) * 2 = 52,432,000 + residual 78,643,200
  //        = 550,518,400
  // backward (fp32 db): bias_grad [8192, 1600] 26,214,400 + 6400 = 26,220,800
  //        + relu' 3 * 52,428,800 * 2 = 314,572,800 + bias_grad [8192, 6400] 104,857,600 + 25,600
  //        + residual 78,643,200 = 524,320,000
  EXPECT_DOUBLE_EQ(b.elementwise, 1074838400.0);
  EXPECT_DOUBLE_EQ(b.cast, 122928000.0);       // 20,488,000 * (4 + 2)
  EXPECT_DOUBLE_EQ(b.optimizer, 573664000.0);  // 20,488,000 * 28
}

TEST(FlopsElementwise, PhasesOfOtherSteps) {
  MlpPasses linear;
  const MlpPhaseBytes l = mlp_phase_bytes(kD, kFf, kT, 2, 2 * kD * kFf, linear);
  EXPECT_EQ(l.elementwise, 0.0);  // two GEMMs, nothing between them
  EXPECT_EQ(l.cast, 0.0);
  EXPECT_EQ(l.optimizer, 0.0);

  MlpPasses fused;
  fused.bias = fused.activation = fused.residual = fused.fused = true;
  EXPECT_EQ(mlp_phase_bytes(kD, kFf, kT, 2, kWeightsAndBiases, fused).elementwise, 0.0);  // all in epilogues

  // The unfused forward pass alone: the forward half of the hand-checked step above.
  MlpPasses fwd;
  fwd.bias = fwd.activation = fwd.residual = true;
  fwd.backward = false;
  EXPECT_DOUBLE_EQ(mlp_phase_bytes(kD, kFf, kT, 2, kWeightsAndBiases, fwd).elementwise, 550518400.0);

  // Mixed forward: the cast, no optimizer.
  MlpPasses mixed_fwd;
  mixed_fwd.mixed = true;
  mixed_fwd.backward = false;
  const MlpPhaseBytes m = mlp_phase_bytes(kD, kFf, kT, 2, 2 * kD * kFf, mixed_fwd);
  EXPECT_DOUBLE_EQ(m.cast, 122880000.0);  // 20,480,000 * 6
  EXPECT_EQ(m.optimizer, 0.0);

  // SwiGLU on d_ff = 4288 at 8192 tokens: n = 35,127,296 elements.
  MlpPasses gated;
  gated.gated = gated.gate_fused = true;
  const double n = 8192.0 * 4288;
  EXPECT_DOUBLE_EQ(mlp_phase_bytes(kD, 4288, kT, 2, 3 * kD * 4288, gated).elementwise, (3 + 5) * n * 2);
  gated.gate_fused = false;  // silu 2 + multiply 3; backward multiply 3 + 3, silu' 3
  EXPECT_DOUBLE_EQ(mlp_phase_bytes(kD, 4288, kT, 2, 3 * kD * 4288, gated).elementwise, (5 + 9) * n * 2);
}

}  // namespace wflops::flops
