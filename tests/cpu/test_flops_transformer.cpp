// Transformer parameter counts and per-token FLOPs, against values worked out by hand.
#include <gtest/gtest.h>

#include "model/flops_transformer.hpp"

namespace {

using namespace wflops::flops;

// GPT-2 small: H = 768, L = 12, V = 50257, S = 1024, tied embeddings.
TransformerShape gpt2_small() {
  TransformerShape m;
  m.hidden = 768, m.layers = 12, m.vocab = 50257, m.seq = 1024;
  return m;
}

// GPT-2 small with MoE blocks of E experts at granularity G.
TransformerShape gpt2_small_moe(double experts, double granularity) {
  TransformerShape m = gpt2_small();
  m.experts = experts, m.granularity = granularity;
  return m;
}

TEST(TransformerParams, Gpt2Small) {
  const auto p = transformer_params(gpt2_small());
  // Token embeddings 50257 x 768 = 38,597,376; positions 1024 x 768 = 786,432.
  EXPECT_DOUBLE_EQ(p.embedding, 38597376.0 + 786432.0);
  // Per block: 4H^2 = 2,359,296 + 8H^2 = 4,718,592 + layer norms 4H = 3,072 = 7,080,960;
  // x 12 = 84,971,520, + final layer norm 2H = 1,536.
  EXPECT_DOUBLE_EQ(p.non_embedding, 84973056.0);
  EXPECT_DOUBLE_EQ(p.total, 124356864.0);
  EXPECT_DOUBLE_EQ(p.active, p.total);
  // The published 124,439,808 of GPT-2 small also counts the linear layers' biases, 9H per
  // block (QKV 3H, output H, MLP 4H + H): 12 x 6,912 = 82,944 more.
  EXPECT_DOUBLE_EQ(p.total + 12 * 9 * 768, 124439808.0);
}

TEST(TransformerParams, UntiedDoublesTokenEmbeddings) {
  auto m = gpt2_small();
  m.untied = true;
  EXPECT_DOUBLE_EQ(transformer_params(m).total, 124356864.0 + 38597376.0);
  EXPECT_DOUBLE_EQ(transformer_params(m).non_embedding, 84973056.0);
}

TEST(TransformerParams, MoeBlocks) {
  auto m = gpt2_small_moe(8, 2);
  const auto p = transformer_params(m);
  // Per block: attention 2,359,296 + experts 8H^2 x 8 = 37,748,736 + router H x E x G = 768 x 16
  // = 12,288 + norms 3,072 = 40,123,392; x 12 = 481,480,704, + 1,536.
  EXPECT_DOUBLE_EQ(p.non_embedding, 481482240.0);
  EXPECT_DOUBLE_EQ(p.total, 481482240.0 + 39383808.0);
  // Active: the G = 2 experts a token visits hold 8H^2 together, as a dense MLP: the dense total
  // plus the router, 12 x 12,288 = 147,456.
  EXPECT_DOUBLE_EQ(p.active, 124356864.0 + 147456.0);
  // Granularity splits experts without adding expert weights; only the router grows.
  m.granularity = 8;
  EXPECT_DOUBLE_EQ(transformer_params(m).non_embedding - p.non_embedding, 12 * 768 * 8 * (8 - 2));
}

TEST(TransformerFlops, Gpt2SmallPerToken) {
  auto m = gpt2_small();
  const auto f = transformer_flops_per_token(m);
  // 6 x 12H^2 x L = 6 x 7,077,888 x 12 = 509,607,936.
  EXPECT_DOUBLE_EQ(f.weight, 509607936.0);
  // 2 x 2 x S x H per layer forward, x 3 for a step: 12 x 1024 x 768 x 12 = 113,246,208.
  EXPECT_DOUBLE_EQ(f.attention, 113246208.0);
  EXPECT_DOUBLE_EQ(f.routing, 0.0);
  EXPECT_DOUBLE_EQ(f.total, 622854144.0);
  m.causal = true;
  EXPECT_DOUBLE_EQ(transformer_flops_per_token(m).attention, 56623104.0);
}

TEST(TransformerFlops, MoeAddsRoutingOnly) {
  const auto m = gpt2_small_moe(64, 8);
  const auto f = transformer_flops_per_token(m);
  // Active expert weights stay 8H^2: weight FLOPs as dense. Routing H x E x G x 14 per block:
  // 768 x 64 x 8 x 14 x 12 = 66,060,288.
  EXPECT_DOUBLE_EQ(f.weight, 509607936.0);
  EXPECT_DOUBLE_EQ(f.routing, 66060288.0);
  EXPECT_DOUBLE_EQ(f.total, 509607936.0 + 113246208.0 + 66060288.0);
}

}  // namespace
