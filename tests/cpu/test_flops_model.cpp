// The whole-model step (model_step) part of the FLOP model, against values worked out by hand.
#include <gtest/gtest.h>

#include "model/flops.hpp"
#include "model/flops_model.hpp"
#include "model/flops_transformer.hpp"

namespace wflops::flops {

namespace {

// A step's weight, attention and model FLOPs (model = weight + attention) against the hand counts.
void expect_step_flops(const ModelStepShape& m, double weight, double attention, double model) {
  EXPECT_DOUBLE_EQ(model_step_weight_flops(m), weight);
  EXPECT_DOUBLE_EQ(model_step_attention_flops(m), attention);
  EXPECT_DOUBLE_EQ(model_step_model_flops(m), model);
}

}  // namespace

TEST(FlopsModel, Gpt2ReferenceConfiguration) {
  const ModelStepShape m = gpt2_reference_shape();  // d 1600, h 25, L 8, V 50257, 32 x 256
  EXPECT_DOUBLE_EQ(m.tokens(), 8192.0);
  // Block: 12 d^2 = 12 x 2,560,000 = 30,720,000; x 8 = 245,760,000.
  EXPECT_DOUBLE_EQ(model_block_weights(m), 30720000.0);
  // Head: 50,257 x 1600 = 80,411,200. N_w = 245,760,000 + 80,411,200 = 326,171,200.
  EXPECT_DOUBLE_EQ(model_head_weights(m), 80411200.0);
  EXPECT_DOUBLE_EQ(model_weights(m), 326171200.0);
  // Weight FLOPs: 6 x 326,171,200 = 1,957,027,200 per token, x 8192 = 16,031,966,822,400.
  // Attention per layer, causal forward: 4 b h s^2 d_h / 2 = 2 T s d = 2 x 8192 x 256 x 1600
  // = 6,710,886,400; x 3.5 (forward + 2.5x backward) = 23,488,102,400; x 8 = 187,904,819,200.
  expect_step_flops(m, 16031966822400.0, 187904819200.0, 16219871641600.0);
  // The same count through the attention module's own per-head formula: 25 heads of 64.
  EXPECT_DOUBLE_EQ(model_step_attention_flops(m),
                   8 * (attention_forward(32, 25, 256, 64, true) + attention_backward(32, 25, 256, 64, true)));
}

TEST(FlopsModel, Gpt2Small) {
  const ModelStepShape m = gpt2_small_shape();  // d 768, h 12, L 12, V 50257, 16 x 1024
  // 12 x 768^2 = 7,077,888 per block, x 12 = 84,934,656; head 50,257 x 768 = 38,597,376.
  EXPECT_DOUBLE_EQ(model_weights(m), 84934656.0 + 38597376.0);
  EXPECT_DOUBLE_EQ(model_weights(m), 123532032.0);
  // 6 x 123,532,032 = 741,192,192 per token, x 16,384 tokens = 12,143,692,873,728.
  // 2 T s d = 2 x 16384 x 1024 x 768 = 25,769,803,776 per layer forward; x 3.5 x 12.
  EXPECT_DOUBLE_EQ(model_step_attention_flops(m), 25769803776.0 * 3.5 * 12);
  expect_step_flops(m, 12143692873728.0, 1082331758592.0, 13226024632320.0);
  // The block matrices are those of the generic transformer; the step adds the head.
  TransformerShape t;
  t.hidden = 768, t.layers = 12, t.vocab = 50257, t.seq = 1024;
  EXPECT_DOUBLE_EQ(transformer_flops_per_token(t).weight * m.tokens() + 6 * 38597376.0 * m.tokens(),
                   model_step_weight_flops(m));
}

TEST(FlopsModel, Gpt2SmallParameters) {
  const ModelParams p = model_params(gpt2_small_shape());
  // Published GPT-2 small: 124,439,808 = 38,597,376 tokens + 786,432 positions (1024 x 768)
  // + 12 x (7,077,888 matrices + 6,912 biases (9d) + 3,072 norms (4d)) + 1,536 final norm.
  EXPECT_DOUBLE_EQ(p.block_biases, 6912.0);
  EXPECT_DOUBLE_EQ(p.block_norms, 3072.0);
  EXPECT_DOUBLE_EQ(p.embedding, 38597376.0 + 786432.0);
  EXPECT_DOUBLE_EQ(p.head, 0.0);  // tied
  EXPECT_DOUBLE_EQ(p.total, 124439808.0);
  EXPECT_DOUBLE_EQ(p.non_embedding, 124439808.0 - 39383808.0);
}

TEST(FlopsModel, Gpt2ReferenceParameters) {
  const ModelParams p = model_params(gpt2_reference_shape());
  // 80,411,200 tokens + 409,600 positions (256 x 1600) + 8 x (30,720,000 + 14,400 + 6,400)
  // + 3,200 = 326,750,400: 579,200 more than N_w, none of it weight FLOPs.
  EXPECT_DOUBLE_EQ(p.position_embedding, 409600.0);
  EXPECT_DOUBLE_EQ(p.total, 326750400.0);
}

TEST(FlopsModel, GqaAttentionWeights) {
  // d 4096, 32 heads of 128, 8 KV heads: K, V are 4096 x 1024 each.
  // 2 x 16,777,216 + 2 x 4,194,304 = 41,943,040.
  EXPECT_DOUBLE_EQ(gqa_attention_weights(4096, 32, 8), 41943040.0);
  // kvh = h is multi-head attention; kvh = 1 is multi-query (K, V are d x d/h).
  EXPECT_DOUBLE_EQ(gqa_attention_weights(1600, 25, 25), attention_block_weights(1600));
  EXPECT_DOUBLE_EQ(gqa_attention_weights(4096, 32, 1), 2 * 16777216.0 + 2 * 4096 * 128.0);
}

TEST(FlopsModel, Llama3Block) {
  ModelStepShape m = llama3_8b_block_shape();  // d 4096, 32/8 heads, d_ff 14336, V 128256, L 2, 1 x 4096
  // SwiGLU 3 x 4096 x 14336 = 176,160,768; block 41,943,040 + 176,160,768 = 218,103,808.
  EXPECT_DOUBLE_EQ(model_block_weights(m), 218103808.0);
  // Untied head 128,256 x 4096 = 525,336,576, counted once: N_w = 2 x 218,103,808 + 525,336,576.
  EXPECT_DOUBLE_EQ(model_head_weights(m), 525336576.0);
  EXPECT_DOUBLE_EQ(model_weights(m), 961544192.0);
  // 6 x 961,544,192 = 5,769,265,152 per token, x 4096 = 23,630,910,062,592.
  // 2 T s d = 2 x 4096^3 = 137,438,953,472 per layer forward (32 query heads of 128, whatever
  // kvh is); x 3.5 x 2 layers = 962,072,674,304.
  expect_step_flops(m, 23630910062592.0, 962072674304.0, 24592982736896.0);
  m.kv_heads = 32;  // more K/V heads: more weights, the same attention FLOPs
  EXPECT_DOUBLE_EQ(model_step_attention_flops(m), 962072674304.0);
  // 2 layers x K and V each 4096 x 3072 wider.
  EXPECT_DOUBLE_EQ(model_weights(m), 961544192.0 + 2 * 2 * 4096 * 3072.0);

  // 2 x 4096 tokens: everything doubles (the sequence length, hence attention per token, is unchanged).
  m = llama3_8b_block_shape();
  m.batch = 2;
  expect_step_flops(m, 47261820125184.0, 1924145348608.0, 49185965473792.0);
}

TEST(FlopsModel, Llama3Parameters) {
  ModelStepShape m = llama3_8b_block_shape();
  ModelParams p = model_params(m);
  // Embedding and head 525,336,576 each; blocks 218,103,808 + two RMSNorm gains 8,192; final 4,096.
  EXPECT_DOUBLE_EQ(p.block_norms, 8192.0);
  EXPECT_DOUBLE_EQ(p.block_biases, 0.0);
  EXPECT_DOUBLE_EQ(p.position_embedding, 0.0);
  EXPECT_DOUBLE_EQ(p.total, 2 * 525336576.0 + 2 * 218112000.0 + 4096.0);
  EXPECT_DOUBLE_EQ(p.total, 1486901248.0);
  // All 32 layers: 8,030,261,248, Llama-3-8B's published 8.03B.
  m.layers = 32;
  p = model_params(m);
  EXPECT_DOUBLE_EQ(p.total, 8030261248.0);
  EXPECT_DOUBLE_EQ(p.non_embedding, 8030261248.0 - 2 * 525336576.0);
}

}  // namespace wflops::flops
