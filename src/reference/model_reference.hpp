// The fp64 CPU reference of a whole decoder-only language-model training step (the model_step
// family): the loss and the gradient of every parameter, that the GPU implementations will be
// verified against at a small configuration, and that the CPU tests check by finite differences.
//
// GPT-2 (as published, pre-LayerNorm), on tokens [b, s] and next-token targets [b, s]:
//   x = wte[token] + wpe[position]
//   per block:  a = LN1(x);  [q | k | v] = a W_qkv^T + b_qkv
//               y = causal multi-head attention(q, k, v) (heads of d/h, scale 1/sqrt(d/h))
//               x = x + y W_o^T + b_o
//               c = LN2(x);  x = x + gelu(c W_fc^T + b_fc) W_proj^T + b_proj   (d -> 4d -> d)
//   z = LN_f(x);  logits = z wte^T (the LM head tied to the token embedding)
//   loss = mean over the b·s tokens of -log softmax(logits)[target]
// LayerNorm(x) = g · (x - mean) / sqrt(var + eps) + beta (biased variance, eps 1e-5 as GPT-2);
// gelu is the tanh approximation (mlp_reference.hpp), as GPT-2 uses.
// Matrices are held as nn.Linear holds them, [out, in] row-major; activations [b·s, features].
//
// Llama (as in Llama 3, no biases anywhere):
//   x = tok_emb[token]
//   per block:  a = RMSNorm1(x);  q = a W_q^T [T, d],  k = a W_k^T,  v = a W_v^T [T, kvh · d/h]
//               q, k rotated by RoPE at each token's position (rope_rotate)
//               y = causal grouped-query attention (query head j reads K/V head j / (h / kvh))
//               x = x + y W_o^T
//               c = RMSNorm2(x);  x = x + (silu(c W_gate^T) * (c W_up^T)) W_down^T   (d -> d_ff -> d)
//   z = RMSNorm_f(x);  logits = z head^T (untied);  loss as GPT-2's.
// RMSNorm(x) = g · x / sqrt(mean(x²) + eps), eps 1e-5.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace wflops::model_ref {

struct Gpt2Config {
  long vocab = 0, seq = 0, hidden = 0, heads = 0, layers = 0, batch = 0;
  double ln_eps = 1e-5;
  long ffn() const { return 4 * hidden; }
  long tokens() const { return batch * seq; }
};

struct Gpt2Block {
  std::vector<double> ln1_g, ln1_b;    // [d]
  std::vector<double> w_qkv, b_qkv;    // [3d, d] (rows: q, then k, then v), [3d]
  std::vector<double> w_o, b_o;        // [d, d], [d]
  std::vector<double> ln2_g, ln2_b;    // [d]
  std::vector<double> w_fc, b_fc;      // [4d, d], [4d]
  std::vector<double> w_proj, b_proj;  // [d, 4d], [d]
};

// The parameters, or their gradients (the same shapes).
struct Gpt2Params {
  std::vector<double> wte;  // [V, d]: token embedding and LM head
  std::vector<double> wpe;  // [s, d]
  std::vector<Gpt2Block> blocks;
  std::vector<double> lnf_g, lnf_b;  // [d]
};

// Every tensor with its name ("wte", "wpe", "h0.ln1_g", ..., "lnf_b"), in a fixed order: for the
// tests and for comparing a GPU step's gradients tensor by tensor.
std::vector<std::pair<std::string, std::vector<double>*>> named_tensors(Gpt2Params& p);
std::vector<std::pair<std::string, const std::vector<double>*>> named_tensors(const Gpt2Params& p);

// Every tensor at its shape, all zeros.
Gpt2Params gpt2_zero_params(const Gpt2Config& c);
// Matrices and embeddings N(0, weight_std²); biases N(0, bias_std²); norm gains 1 + N(0, bias_std²),
// so bias_std = 0 gives GPT-2's initialisation (zero biases, unit gains). Deterministic in seed.
Gpt2Params gpt2_random_params(const Gpt2Config& c, unsigned long seed, double weight_std, double bias_std);

// tokens and targets: [batch, seq] row-major, each in [0, vocab). std::invalid_argument on a shape
// that does not fit the configuration or a token out of range.
double gpt2_loss(const Gpt2Config& c, const Gpt2Params& p, const std::vector<long>& tokens,
                 const std::vector<long>& targets);
// The loss, and in grads (resized) dloss/dparameter for every parameter; the tied wte receives both
// the LM head's and the embedding lookup's gradient.
double gpt2_loss_and_gradients(const Gpt2Config& c, const Gpt2Params& p, const std::vector<long>& tokens,
                               const std::vector<long>& targets, Gpt2Params& grads);

// ---- llama ----------------------------------------------------------------------------------
struct LlamaConfig {
  long vocab = 0, seq = 0, hidden = 0, heads = 0, kv_heads = 0, ffn = 0, layers = 0, batch = 0;
  double norm_eps = 1e-5;
  double rope_theta = 500000;  // Llama 3's base; Llama 2 used 10000
  long head_dim() const { return hidden / heads; }
  long tokens() const { return batch * seq; }
};

struct LlamaBlock {
  std::vector<double> attn_norm;             // [d]
  std::vector<double> w_q, w_k, w_v, w_o;    // [d, d], [kvh·d/h, d], [kvh·d/h, d], [d, d]
  std::vector<double> mlp_norm;              // [d]
  std::vector<double> w_gate, w_up, w_down;  // [d_ff, d], [d_ff, d], [d, d_ff]
};
struct LlamaParams {
  std::vector<double> tok_emb;  // [V, d]
  std::vector<LlamaBlock> blocks;
  std::vector<double> final_norm;  // [d]
  std::vector<double> head;        // [V, d], untied
};

// Rotary position embedding of one head vector x[head_dim] at `position`, in the half-split layout
// of Hugging Face's Llama (dimension i pairs with i + head_dim/2; Meta's original pairs 2i with 2i+1,
// the same map on permuted weights): with angle = position · theta^(-2i/head_dim), i < head_dim/2,
//   (x_i, x_{i+half}) <- (x_i cos - x_{i+half} sin, x_{i+half} cos + x_i sin).
// inverse = true rotates by -angle: the transpose, which is the rotation's backward.
void rope_rotate(double* x, long head_dim, long position, double theta, bool inverse = false);

std::vector<std::pair<std::string, std::vector<double>*>> named_tensors(LlamaParams& p);
std::vector<std::pair<std::string, const std::vector<double>*>> named_tensors(const LlamaParams& p);
LlamaParams llama_zero_params(const LlamaConfig& c);
// Matrices and embeddings N(0, weight_std²), norm gains 1 + N(0, gain_std²). Deterministic in seed.
LlamaParams llama_random_params(const LlamaConfig& c, unsigned long seed, double weight_std, double gain_std);
double llama_loss(const LlamaConfig& c, const LlamaParams& p, const std::vector<long>& tokens,
                  const std::vector<long>& targets);
double llama_loss_and_gradients(const LlamaConfig& c, const LlamaParams& p, const std::vector<long>& tokens,
                                const std::vector<long>& targets, LlamaParams& grads);

}  // namespace wflops::model_ref
