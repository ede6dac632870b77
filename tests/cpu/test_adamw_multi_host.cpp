// The multi-tensor AdamW's host side (kernels/elementwise/adamw_multi.cuh): the chunk table covers every
// tensor exactly once in pieces of at most kAdamWChunk elements, and the reference is adamw.cuh's
// update with the tensor's weight decay on or off (one step by hand).
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "elementwise/adamw_multi.cuh"

namespace wflops::kernels {

TEST(AdamWMultiHost, ChunksCoverEveryTensorOnce) {
  const std::vector<std::size_t> sizes = {1, 0, kAdamWChunk, kAdamWChunk + 1, 3 * kAdamWChunk - 5, 1600};
  const std::vector<AdamWChunk> chunks = adamw_chunks(sizes);
  ASSERT_EQ(chunks.size(), 1u + 0 + 1 + 2 + 3 + 1);
  std::vector<std::size_t> covered(sizes.size(), 0);
  int last_tensor = -1;
  std::size_t next = 0;
  for (const AdamWChunk& c : chunks) {
    ASSERT_GE(c.tensor, last_tensor);  // in order, tensor by tensor, each from 0 up without gaps
    if (c.tensor != last_tensor) next = 0;
    EXPECT_EQ(c.begin, next);
    EXPECT_LT(c.begin, c.end);
    EXPECT_LE(c.end - c.begin, kAdamWChunk);
    EXPECT_EQ(c.begin % kAdamWChunk, 0u);  // so every chunk starts on a float4 boundary
    covered[static_cast<std::size_t>(c.tensor)] += c.end - c.begin;
    next = c.end;
    last_tensor = c.tensor;
  }
  EXPECT_EQ(covered, sizes);
  EXPECT_TRUE(adamw_chunks({}).empty());
}

TEST(AdamWMultiHost, OneStepByHandWithAndWithoutDecay) {
  // Step 1: m = (1 - b1) g and v = (1 - b2) g^2, so m_hat = g, v_hat = g^2 and (eps = 0) the
  // update is lr (sign(g) + wd p): p = 1, g = 0.5, lr = 0.1, wd = 0.1 gives 1 - 0.1 (1 + 0.1).
  AdamW opt;
  opt.lr = 0.1f;
  opt.eps = 0;
  opt.weight_decay = 0.1f;
  std::vector<double> p = {1, 1}, g = {0.5, -0.5}, m = {0, 0}, v = {0, 0};
  adamw_multi_step_host(opt, 1, true, p, g, m, v);
  EXPECT_NEAR(p[0], 1 - 0.1 * (1 + 0.1), 1e-7);  // opt's fields are floats: 0.1f is 0.1 to 1e-8
  EXPECT_NEAR(p[1], 1 - 0.1 * (-1 + 0.1), 1e-7);
  EXPECT_NEAR(m[0], 0.05, 1e-7);  // beta1 = 0.9f: 1 - beta1 is 0.1 to about 2.4e-8
  EXPECT_NEAR(v[0], 0.05 * 0.25, 1e-7);
  std::vector<double> q = {1}, gq = {0.5}, mq = {0}, vq = {0};
  adamw_multi_step_host(opt, 1, false, q, gq, mq, vq);
  EXPECT_NEAR(q[0], 0.9, 1e-7);
  // The same as adamw_step_host element by element.
  double p1 = 1, m1 = 0, v1 = 0;
  adamw_step_host(opt, 1, p1, 0.5, m1, v1);
  EXPECT_EQ(p1, p[0]);
}

}  // namespace wflops::kernels
