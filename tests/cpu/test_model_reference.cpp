// The fp64 references of the whole GPT-2 and llama training steps (src/reference/model_reference.hpp): losses
// worked out by hand, the loss at a small initialisation, and every gradient tensor against central
// finite differences of the loss; RoPE's rotation on hand values.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "finite_difference.hpp"
#include "reference/attention_reference.hpp"
#include "reference/model_reference.hpp"
#include "reference/verify_error.hpp"

namespace wflops::model_ref {

namespace {

// The small configuration of the GPU test to come: d 32, 2 layers, 4 heads of 8, 2 x 16 tokens, V 64.
Gpt2Config small_config() {
  Gpt2Config c;
  c.vocab = 64, c.seq = 16, c.hidden = 32, c.heads = 4, c.layers = 2, c.batch = 2;
  return c;
}

// Random tokens, each sequence's targets its next tokens (the last one a fresh draw).
struct Batch {
  std::vector<long> tokens, targets;
};
template <class Config>
Batch random_batch(const Config& c, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<long> pick(0, c.vocab - 1);
  Batch b;
  b.tokens.resize(static_cast<std::size_t>(c.tokens()));
  b.targets.resize(b.tokens.size());
  for (auto& t : b.tokens) t = pick(rng);
  for (long s = 0; s < c.batch; ++s) {
    for (long t = 0; t < c.seq; ++t) {
      const std::size_t i = static_cast<std::size_t>(s * c.seq + t);
      b.targets[i] = t + 1 < c.seq ? b.tokens[i + 1] : pick(rng);
    }
  }
  return b;
}

// Each gradient tensor against (L(w + h) - L(w - h)) / 2h on sampled entries (always the first and
// the last), h = 1e-5: the truncation error is of order h² and the rounding error of order
// 1e-16 / h, both far under 1e-6 of gradients of order 1e-3 or more. `loss` evaluates the loss at
// the current parameters; `params` and `grads` are the named tensors of both, in the same order.
template <class Loss>
void expect_gradients_match(const Loss& loss, std::vector<std::pair<std::string, std::vector<double>*>> params,
                            const std::vector<std::pair<std::string, const std::vector<double>*>>& grads) {
  ASSERT_EQ(params.size(), grads.size());
  std::mt19937 rng(17);
  const double h = 1e-5;
  for (std::size_t n = 0; n < params.size(); ++n) {
    std::vector<double>& w = *params[n].second;
    const std::vector<double>& g = *grads[n].second;
    ASSERT_EQ(grads[n].first, params[n].first);
    ASSERT_EQ(g.size(), w.size()) << params[n].first;
    std::vector<std::size_t> picks = {0, w.size() - 1};
    std::uniform_int_distribution<std::size_t> any(0, w.size() - 1);
    for (int i = 0; i < 6; ++i) picks.push_back(any(rng));
    std::vector<double> analytic, numeric;
    for (std::size_t i : picks) {
      analytic.push_back(g[i]);
      numeric.push_back(test_support::central_difference(loss, w, i, h));
    }
    double norm = 0;
    for (double v : analytic) norm += v * v;
    EXPECT_GT(std::sqrt(norm), 1e-4) << params[n].first << ": the sampled gradient is (nearly) zero";
    EXPECT_LT(ErrorSum(analytic, numeric).relative(), 1e-6) << params[n].first;
  }
}

// The whole step's gradients against finite differences (expect_gradients_match) at params p, on a
// random batch (seed 5): the loss the step returns is the loss alone, and there are `tensors` named
// tensors. loss and loss_and_gradients: the model's gpt2_/llama_ functions.
template <class Config, class Params, class Loss, class LossAndGradients>
void expect_step_gradients_match(const Config& c, Params p, Loss loss, LossAndGradients loss_and_gradients,
                                 std::size_t tensors) {
  const Batch b = random_batch(c, 5);
  Params grads;
  const double step_loss = loss_and_gradients(c, p, b.tokens, b.targets, grads);
  EXPECT_DOUBLE_EQ(step_loss, loss(c, p, b.tokens, b.targets));
  ASSERT_EQ(named_tensors(p).size(), tensors);
  expect_gradients_match([&] { return loss(c, p, b.tokens, b.targets); }, named_tensors(p),
                         named_tensors(static_cast<const Params&>(grads)));
}

}  // namespace

// One block, d 4, 2 heads, V 3, s 3, eps 0, chosen so that every quantity is exact:
//   wte rows e0 = (1,-1,1,-1), e1 = (1,1,-1,-1), e2 = (1,-1,-1,1): orthogonal, mean 0, variance 1,
//   so LayerNorm (unit gain, zero bias) leaves each unchanged and removes any constant shift;
//   wpe[t] = t/2 (1,1,1,1), such a shift; W_q = W_k = 0, so every query weighs the keys it sees
//   alike (causal: the mean of the values so far); W_v = W_o = I; the MLP and every bias 0.
// Tokens 0, 1, 2, targets 1, 2, 0. The residual after the block is x_t = e_t + mean(e_0..e_t) + shift:
//   t = 0: 2 e0 -> LN e0, logits (4, 0, 0), loss ln(e^4 + 2) = 4.035976;
//   t = 1: e1 + (e0 + e1)/2 = (2, 1, -1, -2), variance 2.5 -> logits (2, 6, 0)/sqrt(2.5),
//          loss ln(e^1.264911 + e^3.794733 + 1) = 3.892007;
//   t = 2: e2 + (e0 + e1 + e2)/3 = (2, -4/3, -4/3, 2/3), variance 2 -> logits (1, 1, 4) 2 sqrt(2)/3,
//          loss ln(2 + e^(2 sqrt 2)) = 2.940158.
// Mean: 10.868141 / 3 = 3.622714.
TEST(ModelReference, HandCheckedLoss) {
  Gpt2Config c;
  c.vocab = 3, c.seq = 3, c.hidden = 4, c.heads = 2, c.layers = 1, c.batch = 1, c.ln_eps = 0;
  Gpt2Params p = gpt2_zero_params(c);
  p.wte = {1, -1, 1, -1, 1, 1, -1, -1, 1, -1, -1, 1};
  for (long t = 0; t < 3; ++t) {
    for (long i = 0; i < 4; ++i) p.wpe[static_cast<std::size_t>(t * 4 + i)] = 0.5 * t;
  }
  Gpt2Block& b = p.blocks[0];
  for (long i = 0; i < 4; ++i) {
    b.w_qkv[static_cast<std::size_t>((8 + i) * 4 + i)] = 1.0;  // W_v = I (rows 2d..3d-1)
    b.w_o[static_cast<std::size_t>(i * 4 + i)] = 1.0;
  }
  b.ln1_g.assign(4, 1.0);
  b.ln2_g.assign(4, 1.0);
  p.lnf_g.assign(4, 1.0);
  const std::vector<long> tokens = {0, 1, 2}, targets = {1, 2, 0};
  const double want =
      (std::log(std::exp(4.0) + 2.0) + std::log(std::exp(2 / std::sqrt(2.5)) + std::exp(6 / std::sqrt(2.5)) + 1.0) +
       std::log(2.0 + std::exp(2 * std::sqrt(2.0)))) /
      3.0;
  EXPECT_NEAR(want, 3.622714, 1e-6);
  EXPECT_NEAR(gpt2_loss(c, p, tokens, targets), want, 1e-12);
  Gpt2Params grads;
  EXPECT_NEAR(gpt2_loss_and_gradients(c, p, tokens, targets, grads), want, 1e-12);
  // The final norm's bias gradient from the same hand logits: it is the sum over tokens of dz_t =
  // sum_j (softmax(logits_t)_j - [j = target_t]) / 3 x e_j (the head's input gradient).
  const double r = 2 * std::sqrt(2.0) / 3;
  const double logits[3][3] = {{4, 0, 0}, {2 / std::sqrt(2.5), 6 / std::sqrt(2.5), 0}, {r, r, 4 * r}};
  std::vector<double> want_lnf_b(4, 0.0);
  for (int t = 0; t < 3; ++t) {
    double sum = 0;
    for (double l : logits[t]) sum += std::exp(l);
    for (int j = 0; j < 3; ++j) {
      const double dlogit = (std::exp(logits[t][j]) / sum - (j == targets[t] ? 1.0 : 0.0)) / 3.0;
      for (int i = 0; i < 4; ++i) want_lnf_b[i] += dlogit * p.wte[static_cast<std::size_t>(j * 4 + i)];
    }
  }
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(grads.lnf_b[i], want_lnf_b[i], 1e-12) << i;
  // With W_q = W_k = 0, dQ = dS K = 0 and dK = dS^T Q = 0: those rows of dW_qkv are exactly zero.
  for (std::size_t i = 0; i < 8 * 4; ++i) EXPECT_EQ(grads.blocks[0].w_qkv[i], 0.0) << i;
}

// GPT-2's initialisation (weights N(0, 0.02²), zero biases, unit gains) gives logits of about
// 0.02 x sqrt(d) = 0.11: nearly uniform, so the loss is close to ln V = ln 64 = 4.1589.
TEST(ModelReference, LossNearLnVAtSmallInit) {
  const Gpt2Config c = small_config();
  const Gpt2Params p = gpt2_random_params(c, 7, 0.02, 0.0);
  const auto [tokens, targets] = random_batch(c, 11);
  const double loss = gpt2_loss(c, p, tokens, targets);
  EXPECT_NEAR(loss, std::log(64.0), 0.05);
  EXPECT_TRUE(std::isfinite(loss));
}

TEST(ModelReference, RefusesInputsThatDoNotFit) {
  const Gpt2Config c = small_config();
  const Gpt2Params p = gpt2_random_params(c, 1, 0.02, 0.0);
  const auto [tokens, targets] = random_batch(c, 2);
  auto bad = tokens;
  bad[3] = c.vocab;  // outside the vocabulary
  EXPECT_THROW(gpt2_loss(c, p, bad, targets), std::invalid_argument);
  bad.pop_back();
  EXPECT_THROW(gpt2_loss(c, p, bad, targets), std::invalid_argument);
  Gpt2Config odd = c;
  odd.heads = 5;  // 32 does not split into 5 heads
  EXPECT_THROW(gpt2_loss(odd, p, tokens, targets), std::invalid_argument);
  Gpt2Params short_of_blocks = p;
  short_of_blocks.blocks.pop_back();
  EXPECT_THROW(gpt2_loss(c, short_of_blocks, tokens, targets), std::invalid_argument);
}

// Every gradient tensor by finite differences (expect_gradients_match). Weights N(0, 0.2²), biases
// and gain offsets N(0, 0.1²), so that softmax, GELU and the norms are well away from linear.
TEST(ModelReference, GradientsMatchFiniteDifferences) {
  const Gpt2Config c = small_config();
  expect_step_gradients_match(c, gpt2_random_params(c, 3, 0.2, 0.1), gpt2_loss, gpt2_loss_and_gradients,
                              2 + 12 * 2 + 2u);
}

// ---- llama ----------------------------------------------------------------------------------------

namespace {

// d 32, 4 query heads of 8 sharing 2 K/V heads, d_ff 48, 2 layers, 2 x 16 tokens, V 64. theta 10^4
// rather than Llama 3's 5 x 10^5, so that more of a short sequence's head dimensions turn.
LlamaConfig small_llama() {
  LlamaConfig c;
  c.vocab = 64, c.seq = 16, c.hidden = 32, c.heads = 4, c.kv_heads = 2, c.ffn = 48, c.layers = 2, c.batch = 2;
  c.rope_theta = 10000;
  return c;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

// head_dim 4, theta 10^4: pair (0, 2) turns by position x 1 rad, pair (1, 3) by position x 10^-2.
TEST(LlamaReference, RopeRotation) {
  std::vector<double> x = {1, 0, 0, 0};
  rope_rotate(x.data(), 4, 1, 10000);
  EXPECT_DOUBLE_EQ(x[0], std::cos(1.0));
  EXPECT_DOUBLE_EQ(x[2], std::sin(1.0));
  EXPECT_EQ(x[1], 0.0);
  EXPECT_EQ(x[3], 0.0);
  x = {0, 1, 0, 0};
  rope_rotate(x.data(), 4, 3, 10000);
  EXPECT_NEAR(x[1], std::cos(0.03), 1e-15);
  EXPECT_NEAR(x[3], std::sin(0.03), 1e-15);
  // Scores depend on the distance between positions only, and the inverse undoes the rotation.
  const std::vector<double> q0 = {0.3, -1.2, 0.7, 2.0}, k0 = {-0.5, 0.4, 1.1, -0.9};
  auto rotated = [](std::vector<double> v, long pos) {
    rope_rotate(v.data(), 4, pos, 10000);
    return v;
  };
  EXPECT_NEAR(dot(rotated(q0, 7), rotated(k0, 2)), dot(rotated(q0, 12), rotated(k0, 7)), 1e-12);
  std::vector<double> back = rotated(q0, 9);
  rope_rotate(back.data(), 4, 9, 10000, true);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_NEAR(back[i], q0[i], 1e-15);
}

// Every block matrix zero, so each block adds nothing (q = k = v = 0 attends to zeros, the SwiGLU of
// zero is zero) and z = RMSNorm(tok_emb[token]). tok_emb rows 3 e_i with the e_i of the GPT-2 case
// (root mean square 3: the norm, gain 1, eps 0, divides it out), head rows e_i: logits 4 at the
// token's own row, 0 elsewhere. Tokens 0, 1, 2, targets 1, 2, 2:
//   ln(e^4 + 2) = 4.035976 twice, and ln(e^4 + 2) - 4 = 0.035976 where target = token;
// mean 8.107929 / 3 = 2.702643.
TEST(LlamaReference, HandCheckedLoss) {
  LlamaConfig c;
  c.vocab = 3, c.seq = 3, c.hidden = 4, c.heads = 2, c.kv_heads = 1, c.ffn = 6, c.layers = 1, c.batch = 1;
  c.norm_eps = 0;
  LlamaParams p = llama_zero_params(c);
  p.head = {1, -1, 1, -1, 1, 1, -1, -1, 1, -1, -1, 1};
  for (std::size_t i = 0; i < p.head.size(); ++i) p.tok_emb[i] = 3 * p.head[i];
  p.blocks[0].attn_norm.assign(4, 1.0);
  p.blocks[0].mlp_norm.assign(4, 1.0);
  p.final_norm.assign(4, 1.0);
  const std::vector<long> tokens = {0, 1, 2}, targets = {1, 2, 2};
  const double lse = std::log(std::exp(4.0) + 2.0);
  const double want = (lse + lse + (lse - 4.0)) / 3.0;
  EXPECT_NEAR(want, 2.702643, 1e-6);
  EXPECT_NEAR(llama_loss(c, p, tokens, targets), want, 1e-12);
  LlamaParams grads;
  EXPECT_NEAR(llama_loss_and_gradients(c, p, tokens, targets, grads), want, 1e-12);
  // The head's gradient: row j gets sum_t (softmax_tj - [j = target_t]) / 3 x z_t with z_t = e_t;
  // softmax of (4, 0, 0) is (e^4, 1, 1) / (e^4 + 2). Row 0, first entry: token 0 gives
  // (e^4 / (e^4 + 2)) x 1, tokens 1 and 2 give 1 / (e^4 + 2) x 1 each; / 3.
  const double big = std::exp(4.0) / (std::exp(4.0) + 2.0), small = 1.0 / (std::exp(4.0) + 2.0);
  EXPECT_NEAR(grads.head[0], (big + small + small) / 3.0, 1e-12);
}

TEST(LlamaReference, LossNearLnVAtSmallInit) {
  LlamaConfig c = small_llama();
  c.rope_theta = 500000;
  const LlamaParams p = llama_random_params(c, 7, 0.02, 0.0);
  const auto [tokens, targets] = random_batch(c, 11);
  EXPECT_NEAR(llama_loss(c, p, tokens, targets), std::log(64.0), 0.05);
}

TEST(LlamaReference, RefusesInputsThatDoNotFit) {
  const LlamaConfig c = small_llama();
  const LlamaParams p = llama_random_params(c, 1, 0.02, 0.0);
  const auto [tokens, targets] = random_batch(c, 2);
  LlamaConfig odd = c;
  odd.kv_heads = 3;  // 4 query heads do not split into 3 groups
  EXPECT_THROW(llama_loss(odd, p, tokens, targets), std::invalid_argument);
  LlamaParams wrong = p;
  wrong.blocks[1].w_k.pop_back();
  EXPECT_THROW(llama_loss(c, wrong, tokens, targets), std::invalid_argument);
  auto bad = targets;
  bad[0] = -1;
  EXPECT_THROW(llama_loss(c, p, tokens, bad), std::invalid_argument);
}

TEST(LlamaReference, GradientsMatchFiniteDifferences) {
  const LlamaConfig c = small_llama();
  expect_step_gradients_match(c, llama_random_params(c, 3, 0.2, 0.1), llama_loss, llama_loss_and_gradients,
                              1 + 9 * 2 + 2u);
}

}  // namespace wflops::model_ref
