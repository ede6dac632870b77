// The FLOP model of a whole decoder-only language-model training step (the model_step family),
// part of the module flops.hpp (same conventions, namespace wflops::flops). `wflops params --arch`
// prints these counts, and the model_step benchmarks will report them as their counters.
//
// Two architectures:
//  - gpt2: learned position embeddings, pre-LayerNorm blocks (LN, QKV with bias, multi-head causal
//    attention, output projection with bias, residual, LN, MLP d -> d_ff -> d with biases and
//    GELU, residual), final LN, LM head tied to the token embedding (GPT-2 as published: d_ff = 4d);
//  - llama: no position table (rotary embeddings have no parameters), RMSNorm, grouped-query
//    attention (kv_heads K/V heads shared by heads/kv_heads query heads each), SwiGLU MLP with
//    three d x d_ff matrices, no biases, final RMSNorm, an untied LM head (as in Llama 3).
//
// What counts (the weight-FLOP convention of flops.hpp and docs/model.md):
//  - N_w, the weights that multiply an activation once per token: every block matrix and the
//    V x d LM head. The head is a real [T, d] x [d, V] GEMM in the forward and two more in the
//    backward, so it earns its 6 FLOPs per weight per token whether or not it is tied to the
//    embedding: a tied matrix is still multiplied once per token, so it is counted once. The
//    embedding lookup is a gather, not a product, and is not counted again.
//  - The real vocabulary: an implementation that pads V to a tile multiple spends time on the
//    padding but earns no FLOPs for it.
//  - Not weight FLOPs: biases, norm gains and biases, position embeddings, the lookup, activations,
//    residual adds, softmax and the loss. They are parameters (the optimizer updates them) and they
//    cost memory traffic, which is where the reference article's HF GPT-2 step lost its time.
//  - Attention (activations times activations) apart, causal, by the public convention of
//    flops_attention.hpp: forward 4·b·h·s²·d_h halved by the mask, backward 2.5x the forward.
//  - model FLOPs = weight + attention FLOPs: the numerator of model-FLOP utilisation (MFU).
#pragma once

namespace wflops::flops {

enum class ModelArch { gpt2, llama };

struct ModelStepShape {
  ModelArch arch = ModelArch::gpt2;
  double hidden = 0;    // d (d_model)
  double layers = 0;    // L
  double heads = 0;     // h, query heads; head size d/h
  double kv_heads = 0;  // kvh, K/V heads (llama; gpt2 has kvh = h)
  double ffn = 0;       // d_ff, the MLP's hidden size (gpt2: 4d)
  double vocab = 0;     // V, the real vocabulary
  double seq = 0;       // s, tokens per sequence (also the rows of gpt2's position table)
  double batch = 0;     // b, sequences per step
  bool untied = false;  // a separate LM head matrix (llama); gpt2 ties it to the token embedding
  double tokens() const { return batch * seq; }
};

// The benchmark configurations of the family (docs/model.md):
//   gpt2 reference (the reference article's HF GPT-2): d 1600, 25 heads, 8 layers, V 50257,
//   32 x 256 tokens; gpt2 small: d 768, 12 heads, 12 layers, 16 x 1024;
//   llama (Llama-3-8B's block and head, 2 layers): d 4096, 32 heads, 8 KV heads, d_ff 14336,
//   V 128256, 1 x 4096 (b = 2 for the second configuration).
ModelStepShape gpt2_reference_shape();
ModelStepShape gpt2_small_shape();
ModelStepShape llama3_8b_block_shape();

// ---- weights a token multiplies ----------------------------------------------------------------
// Grouped-query attention projections: Q [d, d] and O [d, d] as in multi-head attention, K and V
// each [d, kvh · d/h] (kvh heads of size d/h): 2d² + 2·d·d·kvh/h. With kvh = h it is the 4d² of
// attention_block_weights (flops_transformer.hpp).
// E.g. d 4096, h 32, kvh 8: 2 x 16,777,216 + 2 x 4096 x 1024 = 41,943,040.
double gqa_attention_weights(double hidden, double heads, double kv_heads);
// One block's matrices. gpt2: attention_block_weights(d) + mlp_weights(d, d_ff) = 4d² + 8d² = 12d²
// at d_ff = 4d; llama: gqa_attention_weights + swiglu_weights(d, d_ff) = ... + 3·d·d_ff.
double model_block_weights(const ModelStepShape& m);
// The LM head: V x d, one per model, tied or not (see above).
double model_head_weights(const ModelStepShape& m);
// N_w = L · model_block_weights + model_head_weights.
double model_weights(const ModelStepShape& m);

// ---- parameters (what the optimizer updates; not all of them are weight FLOPs) -----------------
struct ModelParams {
  double token_embedding = 0;     // V·d
  double position_embedding = 0;  // gpt2: s·d; llama: 0
  double block_weights = 0;       // per block, model_block_weights
  double block_biases = 0;        // per block, gpt2: QKV 3d + output d + MLP d_ff + d; llama: 0
  double block_norms = 0;         // per block, gpt2: two LayerNorms 4d; llama: two RMSNorm gains 2d
  double final_norm = 0;          // gpt2: 2d; llama: d
  double head = 0;                // the untied head's own V·d; 0 when tied (it is token_embedding)
  double total = 0;               // everything
  double embedding = 0;           // token + position embeddings and an untied head
  double non_embedding = 0;       // total - embedding (the N of C = 6ND)
};
ModelParams model_params(const ModelStepShape& m);

// ---- FLOPs of one training step (forward + backward) on b·s tokens ------------------------------
// Weight FLOPs 6 · N_w · T (linear_training_step): the family's τ numerator, `flops`.
double model_step_weight_flops(const ModelStepShape& m);
// Attention L · layer_attention_step_flops(d, s, T, causal): T/s sequences of h heads of d/h, i.e.
// 3.5 x 2·T·s·d per layer with the causal halving. GQA shares K and V between query heads but
// every query head still scores s keys, so the count uses h · d/h = d, whatever kvh is.
double model_step_attention_flops(const ModelStepShape& m);
// Weight + attention: the MFU numerator, `model_flops`.
double model_step_model_flops(const ModelStepShape& m);

}  // namespace wflops::flops
