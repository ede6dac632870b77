// The FLOP model's byte counts of the elementwise passes, casts and the optimizer, on hand-checked
// values.
#include <gtest/gtest.h>

#include "flops.hpp"

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

}  // namespace wflops::flops
