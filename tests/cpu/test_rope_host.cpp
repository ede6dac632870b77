// The host references of RoPE (kernels/model/rope.cuh) and repeat_kv (kernels/model/repeat_kv.cuh):
// RoPE against the model reference's rope_rotate at each row's position, its inverse undoing it and
// keeping every pair's length; repeat_kv's expansion by hand and its backward as the transpose of
// the expansion (<expand(kv), g> = <kv, reduce(g)> for any kv and g).
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <vector>

#include "finite_difference.hpp"
#include "model/repeat_kv.cuh"
#include "model/rope.cuh"
#include "reference/model_reference.hpp"

namespace wflops::kernels {

TEST(RopeHost, MatchesTheModelReferenceAtEachRowsPosition) {
  const RopeDims dims{2, 3, 5, 8};  // [b 2, h 3, s 5, hd 8]
  test_support::UniformVectors random(3);
  const std::vector<double> x = random(dims.rows() * dims.head_dim);
  std::vector<double> y(x.size()), back(x.size());
  rope_host(x.data(), y.data(), dims, 500000, false);
  for (std::size_t row = 0; row < dims.rows(); ++row) {
    std::vector<double> r(x.begin() + static_cast<long>(row * 8), x.begin() + static_cast<long>(row * 8 + 8));
    model_ref::rope_rotate(r.data(), 8, static_cast<long>(row % dims.seq), 500000);
    for (std::size_t i = 0; i < 8; ++i) EXPECT_NEAR(y[row * 8 + i], r[i], 1e-15) << row << " " << i;
    // Position 0 is the identity; every pair keeps its length.
    for (std::size_t i = 0; i < 4; ++i) {
      const double a = x[row * 8 + i], b = x[row * 8 + i + 4], c = y[row * 8 + i], d = y[row * 8 + i + 4];
      EXPECT_NEAR(a * a + b * b, c * c + d * d, 1e-14);
      if (row % dims.seq == 0) {
        EXPECT_EQ(c, a);
      }
    }
  }
  rope_host(y.data(), back.data(), dims, 500000, true);
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(back[i], x[i], 1e-14) << i;
}

TEST(RopeHost, TheBackwardIsTheTransposeOfTheForward) {
  // <rope(x), g> = <x, rope^-1(g)>: the inverse rotation is the forward's backward.
  const RopeDims dims{1, 2, 7, 6};
  test_support::UniformVectors random(9);
  const std::vector<double> x = random(dims.rows() * dims.head_dim), g = random(x.size());
  std::vector<double> rx(x.size()), rg(x.size());
  rope_host(x.data(), rx.data(), dims, 10000, false);
  rope_host(g.data(), rg.data(), dims, 10000, true);
  double left = 0, right = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    left += rx[i] * g[i];
    right += x[i] * rg[i];
  }
  EXPECT_NEAR(left, right, 1e-13);
}

TEST(RepeatKvHost, QueryHeadJReadsKvHeadJOverTheGroup) {
  const RepeatKvDims dims{2, 4, 2, 3, 2};  // b 2, h 4, kvh 2, s 3, hd 2: group 2
  const std::size_t head = dims.seq * dims.head_dim;
  std::vector<double> kv(dims.batch * dims.kv_heads * head), out(dims.batch * dims.heads * head);
  for (std::size_t i = 0; i < kv.size(); ++i) kv[i] = static_cast<double>(i);
  repeat_kv_forward_host(kv.data(), out.data(), dims);
  for (std::size_t b = 0; b < 2; ++b) {
    for (std::size_t j = 0; j < 4; ++j) {
      for (std::size_t e = 0; e < head; ++e) {
        EXPECT_EQ(out[(b * 4 + j) * head + e], kv[(b * 2 + j / 2) * head + e]) << b << " " << j << " " << e;
      }
    }
  }
  test_support::UniformVectors random(4);
  const std::vector<double> x = random(kv.size()), g = random(out.size());
  std::vector<double> ex(out.size()), rg(kv.size());
  repeat_kv_forward_host(x.data(), ex.data(), dims);
  repeat_kv_backward_host(g.data(), rg.data(), dims);
  double left = 0, right = 0;
  for (std::size_t i = 0; i < ex.size(); ++i) left += ex[i] * g[i];
  for (std::size_t i = 0; i < x.size(); ++i) right += x[i] * rg[i];
  EXPECT_NEAR(left, right, 1e-13);
}

}  // namespace wflops::kernels
