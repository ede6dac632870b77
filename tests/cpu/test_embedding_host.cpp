// The host references of the token + position embedding (kernels/model/embedding.cuh): forward and
// backward by hand (repeated tokens, two sequences), and the backward as the transpose of the
// forward (Σ dout·out = Σ dwte·wte + Σ dwpe·wpe for any inputs, the adjoint identity).
#include <gtest/gtest.h>

#include <cstddef>
#include <random>
#include <vector>

#include "model/embedding.cuh"

namespace wflops::kernels {

TEST(EmbeddingHost, ByHand) {
  // V = 3, d = 2, two sequences of S = 2: tokens [2, 0 | 2, 2].
  const std::vector<int> tokens = {2, 0, 2, 2};
  const std::vector<double> wte = {1, 2, 3, 4, 5, 6}, wpe = {0.5, -0.5, 10, 20};
  std::vector<double> out(8);
  embedding_forward_host(tokens.data(), wte.data(), wpe.data(), 4, 2, 3, 2, out.data());
  const std::vector<double> expected = {5.5, 5.5, 11, 22, 5.5, 5.5, 15, 26};
  for (std::size_t i = 0; i < 8; ++i) EXPECT_DOUBLE_EQ(out[i], expected[i]) << i;
  embedding_forward_host(tokens.data(), wte.data(), nullptr, 4, 2, 3, 2, out.data());
  EXPECT_DOUBLE_EQ(out[2], 1);  // no positions: the token row alone

  const std::vector<double> dout = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<double> dwte(6, 100), dwpe(4, 0);  // added to, so start dwte away from zero
  embedding_backward_host(tokens.data(), dout.data(), 4, 2, 3, 2, dwte.data(), dwpe.data());
  EXPECT_DOUBLE_EQ(dwte[0], 103);  // token 0 at position 1 only
  EXPECT_DOUBLE_EQ(dwte[1], 104);
  EXPECT_DOUBLE_EQ(dwte[2], 100);  // token 1 never appears
  EXPECT_DOUBLE_EQ(dwte[3], 100);
  EXPECT_DOUBLE_EQ(dwte[4], 100 + 1 + 5 + 7);  // token 2 at t = 0, 2, 3
  EXPECT_DOUBLE_EQ(dwte[5], 100 + 2 + 6 + 8);
  EXPECT_DOUBLE_EQ(dwpe[0], 1 + 5);  // position 0: t = 0 and t = 2
  EXPECT_DOUBLE_EQ(dwpe[1], 2 + 6);
  EXPECT_DOUBLE_EQ(dwpe[2], 3 + 7);  // position 1: t = 1 and t = 3
  EXPECT_DOUBLE_EQ(dwpe[3], 4 + 8);

  // An id outside the table: the position row alone forward, no token row touched backward.
  const std::vector<int> bad = {3, -1};
  embedding_forward_host(bad.data(), wte.data(), wpe.data(), 2, 2, 3, 2, out.data());
  EXPECT_DOUBLE_EQ(out[0], 0.5);
  EXPECT_DOUBLE_EQ(out[3], 20);
  std::vector<double> untouched(6, 100);
  embedding_backward_host(bad.data(), dout.data(), 2, 2, 3, 2, untouched.data(), dwpe.data());
  for (double g : untouched) EXPECT_DOUBLE_EQ(g, 100);
}

TEST(EmbeddingHost, BackwardIsTheForwardTransposed) {
  const std::size_t vocab = 13, seq = 5, batches = 3, d = 4, T = seq * batches;
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(-1, 1);
  std::uniform_int_distribution<int> id(0, static_cast<int>(vocab) - 1);
  std::vector<int> tokens(T);
  for (int& t : tokens) t = id(rng);
  std::vector<double> wte(vocab * d), wpe(seq * d), dout(T * d), out(T * d);
  for (auto* v : {&wte, &wpe, &dout}) {
    for (double& x : *v) x = u(rng);
  }
  embedding_forward_host(tokens.data(), wte.data(), wpe.data(), T, seq, vocab, d, out.data());
  std::vector<double> dwte(vocab * d, 0), dwpe(seq * d, 0);
  embedding_backward_host(tokens.data(), dout.data(), T, seq, vocab, d, dwte.data(), dwpe.data());
  double lhs = 0, rhs = 0;
  for (std::size_t i = 0; i < T * d; ++i) lhs += dout[i] * out[i];
  for (std::size_t i = 0; i < vocab * d; ++i) rhs += dwte[i] * wte[i];
  for (std::size_t i = 0; i < seq * d; ++i) rhs += dwpe[i] * wpe[i];
  EXPECT_NEAR(lhs, rhs, 1e-12);
}

}  // namespace wflops::kernels
