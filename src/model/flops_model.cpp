#include "model/flops_model.hpp"

#include "model/flops.hpp"
#include "model/flops_transformer.hpp"

namespace wflops::flops {

namespace {

// A preset by its sizes, each set by its member's name (the key docs/conventions.md gives it in
// comment), so that a member added to ModelStepShape cannot shift them.
ModelStepShape preset(ModelArch arch, double hidden, double layers, double heads, double kv_heads, double ffn,
                      double vocab, double seq, double batch, bool untied) {
  ModelStepShape m;
  m.arch = arch;
  m.hidden = hidden;      // d
  m.layers = layers;      // L
  m.heads = heads;        // h
  m.kv_heads = kv_heads;  // kvh
  m.ffn = ffn;            // ff
  m.vocab = vocab;        // V
  m.seq = seq;            // s
  m.batch = batch;        // b
  m.untied = untied;
  return m;
}

constexpr double kGpt2Vocab = 50257;

}  // namespace

// GPT-2 has one K/V head per query head and d_ff = 4d; its head is tied.
ModelStepShape gpt2_reference_shape() {
  return preset(ModelArch::gpt2, 1600, 8, 25, 25, 4 * 1600, kGpt2Vocab, 256, 32, false);
}

ModelStepShape gpt2_small_shape() {
  return preset(ModelArch::gpt2, 768, 12, 12, 12, 4 * 768, kGpt2Vocab, 1024, 16, false);
}

// Llama 3's head is its own matrix.
ModelStepShape llama3_8b_block_shape() {
  return preset(ModelArch::llama, 4096, 2, 32, 8, 14336, 128256, 4096, 1, true);
}

double gqa_attention_weights(double hidden, double heads, double kv_heads) {
  const double kv_width = kv_heads * (hidden / heads);  // kvh heads of size d/h
  return 2.0 * hidden * hidden + 2.0 * hidden * kv_width;
}

double model_block_weights(const ModelStepShape& m) {
  if (m.arch == ModelArch::gpt2) return attention_block_weights(m.hidden) + mlp_weights(m.hidden, m.ffn);
  return gqa_attention_weights(m.hidden, m.heads, m.kv_heads) + swiglu_weights(m.hidden, m.ffn);
}

double model_head_weights(const ModelStepShape& m) { return m.vocab * m.hidden; }

double model_weights(const ModelStepShape& m) { return m.layers * model_block_weights(m) + model_head_weights(m); }

ModelParams model_params(const ModelStepShape& m) {
  const double d = m.hidden;
  // The generic transformer's embedding counts (V·d, twice untied; s·d positions) apply as they are.
  TransformerShape t;
  t.hidden = d;
  t.vocab = m.vocab;
  t.seq = m.seq;
  ModelParams p;
  p.token_embedding = token_embedding_params(t);
  p.head = m.untied ? model_head_weights(m) : 0.0;
  p.block_weights = model_block_weights(m);
  if (m.arch == ModelArch::gpt2) {
    p.position_embedding = position_embedding_params(t);
    // nn.Linear biases: the fused QKV projection's 3d and the output projection's d, then the MLP's
    // d_ff + d (mlp_bias_params).
    p.block_biases = 3.0 * d + d + mlp_bias_params(d, m.ffn);
    p.block_norms = block_layer_norm_params(d);
    p.final_norm = final_layer_norm_params(d);
  } else {
    // RMSNorm has a gain and no bias: half of a LayerNorm's parameters.
    p.block_norms = block_layer_norm_params(d) / 2.0;
    p.final_norm = final_layer_norm_params(d) / 2.0;
  }
  p.embedding = p.token_embedding + p.head + p.position_embedding;
  p.non_embedding = m.layers * (p.block_weights + p.block_biases + p.block_norms) + p.final_norm;
  p.total = p.embedding + p.non_embedding;
  return p;
}

double model_step_weight_flops(const ModelStepShape& m) { return linear_training_step(model_weights(m), m.tokens()); }

double model_step_attention_flops(const ModelStepShape& m) {
  return m.layers * layer_attention_step_flops(m.hidden, m.seq, m.tokens(), true);
}

double model_step_model_flops(const ModelStepShape& m) {
  return model_step_weight_flops(m) + model_step_attention_flops(m);
}

}  // namespace wflops::flops
