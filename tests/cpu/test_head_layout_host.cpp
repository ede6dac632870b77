// The host references of the token-major <-> head-major copies around attention
// (kernels/model/head_layout.cuh): one element's place worked out by hand, split and merge inverse
// to each other, and the map a permutation (every head-major place filled exactly once).
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "model/head_layout.cuh"

namespace wflops::kernels {

TEST(HeadLayoutHost, ByHand) {
  // B 2, S 3, h 2 heads of 2, n 3 (q, k, v): a token-major row is 3 x 2 x 2 = 12 elements.
  const HeadLayout l{2, 3, 2, 2, 3};
  // Token 4 (b 1, p 1), tensor k (j 1), head 1, c 0: index ((4·3 + 1)·2 + 1)·2 = 54. In the
  // head-major arrays: k starts at T·h·hd = 6·2·2 = 24, and (b, head, p, c) = (1, 1, 1, 0) is
  // ((1·2 + 1)·3 + 1)·2 = 20 into it.
  EXPECT_EQ(head_major_index(l, 54), 44u);
  EXPECT_EQ(head_major_index(l, 0), 0u);    // token 0, q, head 0, c 0
  EXPECT_EQ(head_major_index(l, 1), 1u);    // its c 1
  EXPECT_EQ(head_major_index(l, 2), 6u);    // head 1: after head 0's S = 3 rows of 2
  EXPECT_EQ(head_major_index(l, 12), 2u);   // token 1, q, head 0: the next row
  EXPECT_EQ(head_major_index(l, 71), 71u);  // the last element stays last (v, b 1, head 1, p 2, c 1)
}

TEST(HeadLayoutHost, SplitAndMergeAreInversePermutations) {
  for (std::size_t n : {1u, 3u}) {
    const HeadLayout l{3, 5, 4, 6, n};
    const std::size_t count = l.elements();
    std::vector<int> hits(count, 0);
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t j = head_major_index(l, i);
      ASSERT_LT(j, count);
      ++hits[j];
    }
    for (std::size_t j = 0; j < count; ++j) ASSERT_EQ(hits[j], 1) << "n " << n << " place " << j;
    std::vector<double> token_major(count), head_major(count), back(count);
    for (std::size_t i = 0; i < count; ++i) token_major[i] = static_cast<double>(i);
    split_heads_host(token_major.data(), head_major.data(), l);
    merge_heads_host(head_major.data(), back.data(), l);
    EXPECT_EQ(back, token_major);
  }
}

}  // namespace wflops::kernels
