#include "reference/model_reference.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <random>
#include <stdexcept>

#include "reference/attention_reference.hpp"
#include "reference/mlp_reference.hpp"

namespace wflops::model_ref {

namespace {

using Vec = std::vector<double>;

std::size_t sz(long n) { return static_cast<std::size_t>(n); }

using NamedTensors = std::vector<std::pair<std::string, Vec*>>;
using ConstNamedTensors = std::vector<std::pair<std::string, const Vec*>>;

// How a tensor is initialised by *_random_params: N(0, weight_std²), N(0, small_std²) or
// 1 + N(0, small_std²), small_std being GPT-2's bias_std or Llama's gain_std.
enum class Init { weight, bias, gain };

// A model's parameter tensors in named_tensors order: each one's name, its member in the parameters
// (first: before the blocks, last: after them) or in every block, its size and its initialisation.
// The one table that names the tensors and gives their shapes.
template <class Owner>
struct Slot {
  const char* name;
  Vec Owner::*member;
  long size;
  Init init;
};
template <class Params, class Block>
struct Layout {
  std::vector<Slot<Params>> first;
  std::vector<Slot<Block>> block;
  std::vector<Slot<Params>> last;
};

// f(name, size, init, tensor) for every tensor of p in named_tensors order, a block's name prefixed
// "h<layer>.".
template <class Params, class Block, class F>
void for_each_tensor(Params& p, const Layout<Params, Block>& layout, F f) {
  for (const Slot<Params>& t : layout.first) f(std::string(t.name), t.size, t.init, p.*t.member);
  for (std::size_t l = 0; l < p.blocks.size(); ++l) {
    const std::string h = "h" + std::to_string(l) + ".";
    for (const Slot<Block>& t : layout.block) f(h + t.name, t.size, t.init, p.blocks[l].*t.member);
  }
  for (const Slot<Params>& t : layout.last) f(std::string(t.name), t.size, t.init, p.*t.member);
}

template <class Params, class Block>
NamedTensors named(Params& p, const Layout<Params, Block>& layout) {
  NamedTensors out;
  for_each_tensor(p, layout, [&](const std::string& name, long, Init, Vec& t) { out.emplace_back(name, &t); });
  return out;
}

// The const overloads of named_tensors: the same list, read-only.
template <class Params>
ConstNamedTensors const_named_tensors(const Params& p) {
  ConstNamedTensors out;
  for (const auto& [name, t] : named_tensors(const_cast<Params&>(p))) out.emplace_back(name, t);
  return out;
}

// Every tensor of `layers` blocks at its size, all zeros.
template <class Params, class Block>
Params zero_params(const Layout<Params, Block>& layout, long layers) {
  Params p;
  p.blocks.resize(sz(layers));
  for_each_tensor(p, layout, [](const std::string&, long size, Init, Vec& t) { t.assign(sz(size), 0.0); });
  return p;
}

// Every tensor drawn from one N(0, 1) stream seeded with seed, in named_tensors order, and mapped by
// its Init.
template <class Params, class Block>
Params random_params(const Layout<Params, Block>& layout, long layers, unsigned long seed, double weight_std,
                     double small_std) {
  Params p = zero_params(layout, layers);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  for_each_tensor(p, layout, [&](const std::string&, long, Init init, Vec& t) {
    for (double& v : t) {
      const double n = normal(rng);
      v = init == Init::gain ? 1.0 + small_std * n : init == Init::bias ? small_std * n : weight_std * n;
    }
  });
  return p;
}

// y[t, o] = x[t, :] . W[o, :] + b[o] for T rows; W is [out, in] (nn.Linear), b may be empty.
void linear(const Vec& x, const Vec& w, const Vec& b, long rows, long in, long out, Vec& y) {
  y.assign(sz(rows * out), 0.0);
  for (long t = 0; t < rows; ++t) {
    const double* xr = &x[sz(t * in)];
    for (long o = 0; o < out; ++o) {
      const double* wr = &w[sz(o * in)];
      double s = b.empty() ? 0.0 : b[sz(o)];
      for (long i = 0; i < in; ++i) s += xr[i] * wr[i];
      y[sz(t * out + o)] = s;
    }
  }
}

// The backward of linear(): dx += dy W, dW += dy^T x, db += sum over rows of dy (db may be empty). dx
// is sized to [rows, in] with zeros if it is not already, so that several projections of one input
// (llama's Q, K and V) add their input gradients into one dx.
void linear_backward(const Vec& dy, const Vec& x, const Vec& w, long rows, long in, long out, Vec& dx, Vec& dw,
                     Vec& db) {
  if (dx.size() != sz(rows * in)) dx.assign(sz(rows * in), 0.0);
  for (long t = 0; t < rows; ++t) {
    const double* xr = &x[sz(t * in)];
    double* dxr = &dx[sz(t * in)];
    for (long o = 0; o < out; ++o) {
      const double g = dy[sz(t * out + o)];
      if (g == 0.0) continue;
      const double* wr = &w[sz(o * in)];
      double* dwr = &dw[sz(o * in)];
      for (long i = 0; i < in; ++i) {
        dxr[i] += g * wr[i];
        dwr[i] += g * xr[i];
      }
      if (!db.empty()) db[sz(o)] += g;
    }
  }
}

// LayerNorm over the last axis of [rows, d]; keeps x_hat and 1/sqrt(var + eps) for the backward.
struct NormCache {
  Vec x_hat, rstd;
};
void layer_norm(const Vec& x, const Vec& g, const Vec& b, long rows, long d, double eps, Vec& y, NormCache& cache) {
  y.assign(sz(rows * d), 0.0);
  cache.x_hat.assign(sz(rows * d), 0.0);
  cache.rstd.assign(sz(rows), 0.0);
  for (long t = 0; t < rows; ++t) {
    const double* xr = &x[sz(t * d)];
    double mean = 0, var = 0;
    for (long i = 0; i < d; ++i) mean += xr[i];
    mean /= static_cast<double>(d);
    for (long i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= static_cast<double>(d);
    const double rstd = 1.0 / std::sqrt(var + eps);
    cache.rstd[sz(t)] = rstd;
    for (long i = 0; i < d; ++i) {
      const double xh = (xr[i] - mean) * rstd;
      cache.x_hat[sz(t * d + i)] = xh;
      y[sz(t * d + i)] = g[sz(i)] * xh + b[sz(i)];
    }
  }
}

// With x_hat = (x - mean) rstd and dx_hat = dy g, the mean and the variance both depend on every
// x_i of the row, which gives dx = rstd (dx_hat - mean(dx_hat) - x_hat mean(dx_hat x_hat)).
// dx is added to (the residual stream's gradient arrives there); dg += dy x_hat, db += dy.
void layer_norm_backward(const Vec& dy, const NormCache& cache, const Vec& g, long rows, long d, Vec& dx, Vec& dg,
                         Vec& db) {
  for (long t = 0; t < rows; ++t) {
    double mean_dxh = 0, mean_dxh_xh = 0;
    for (long i = 0; i < d; ++i) {
      const double dyi = dy[sz(t * d + i)], xh = cache.x_hat[sz(t * d + i)];
      dg[sz(i)] += dyi * xh;
      db[sz(i)] += dyi;
      mean_dxh += dyi * g[sz(i)];
      mean_dxh_xh += dyi * g[sz(i)] * xh;
    }
    mean_dxh /= static_cast<double>(d);
    mean_dxh_xh /= static_cast<double>(d);
    const double rstd = cache.rstd[sz(t)];
    for (long i = 0; i < d; ++i) {
      const double xh = cache.x_hat[sz(t * d + i)];
      dx[sz(t * d + i)] += rstd * (dy[sz(t * d + i)] * g[sz(i)] - mean_dxh - xh * mean_dxh_xh);
    }
  }
}

// Columns offset .. offset + cols - 1 of rows first .. first + rows - 1 of a [*, width] matrix, as a
// [rows, cols] slice: one (sequence, head) of Q, K or V for the attention reference.
void gather(const Vec& m, long width, long offset, long first, long rows, long cols, Vec& out) {
  out.assign(sz(rows * cols), 0.0);
  for (long t = 0; t < rows; ++t) {
    const double* row = &m[sz((first + t) * width + offset)];
    for (long j = 0; j < cols; ++j) out[sz(t * cols + j)] = row[j];
  }
}
// The inverse, adding: heads that share a K/V head (GQA) add their gradients into it.
void scatter_add(const Vec& in, long width, long offset, long first, long rows, long cols, Vec& m) {
  for (long t = 0; t < rows; ++t) {
    double* row = &m[sz((first + t) * width + offset)];
    for (long j = 0; j < cols; ++j) row[j] += in[sz(t * cols + j)];
  }
}

AttentionProblem attention_problem(long seq, long head_dim) {
  AttentionProblem p;
  p.seq = seq;
  p.head_dim = head_dim;
  p.causal = true;
  p.scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  return p;
}

// Causal attention of `batch` sequences of `seq` tokens: query head j of q [T, heads·dh] reads K/V head
// j / (heads / kv_heads) of k, v [T, kv_heads·dh] (kv_heads = heads: multi-head attention). y [T, heads·dh].
struct AttentionShape {
  long batch = 0, seq = 0, heads = 0, kv_heads = 0, head_dim = 0;
};
// For every (sequence s, query head h) in order: q, k, v gathered as [seq, head_dim] slices of q_all
// [T, q_width] at column q_offset + h·dh and of k_all, v_all [T, kv_width] at k_offset or v_offset +
// kv·dh, kv = h / (heads / kv_heads) being h's K/V head; then f(s, h, kv, q, k, v).
template <class F>
void for_each_head(const AttentionShape& a, const Vec& q_all, long q_width, long q_offset, const Vec& k_all,
                   const Vec& v_all, long kv_width, long k_offset, long v_offset, F f) {
  const long dh = a.head_dim, group = a.heads / a.kv_heads;
  Vec q, k, v;
  for (long s = 0; s < a.batch; ++s) {
    for (long h = 0; h < a.heads; ++h) {
      const long kv = h / group;
      gather(q_all, q_width, q_offset + h * dh, s * a.seq, a.seq, dh, q);
      gather(k_all, kv_width, k_offset + kv * dh, s * a.seq, a.seq, dh, k);
      gather(v_all, kv_width, v_offset + kv * dh, s * a.seq, a.seq, dh, v);
      f(s, h, kv, q, k, v);
    }
  }
}

void attention(const AttentionShape& a, const Vec& q_all, long q_width, long q_offset, const Vec& k_all,
               const Vec& v_all, long kv_width, long k_offset, long v_offset, Vec& y) {
  const AttentionProblem p = attention_problem(a.seq, a.head_dim);
  const long dh = a.head_dim;
  y.assign(sz(a.batch * a.seq * a.heads * dh), 0.0);
  Vec o(sz(a.seq * dh)), lse(sz(a.seq));
  for_each_head(a, q_all, q_width, q_offset, k_all, v_all, kv_width, k_offset, v_offset,
                [&](long s, long h, long, const Vec& q, const Vec& k, const Vec& v) {
                  attention_forward_reference(p, q.data(), k.data(), v.data(), o.data(), lse.data());
                  scatter_add(o, a.heads * dh, h * dh, s * a.seq, a.seq, dh, y);
                });
}
// The backward from dy [T, heads·dh]: adds into dq (laid out as q_all), dk and dv (as k_all, v_all).
void attention_backward(const AttentionShape& a, const Vec& q_all, long q_width, long q_offset, const Vec& k_all,
                        const Vec& v_all, long kv_width, long k_offset, long v_offset, const Vec& dy, Vec& dq_all,
                        Vec& dk_all, Vec& dv_all) {
  const AttentionProblem p = attention_problem(a.seq, a.head_dim);
  const long dh = a.head_dim;
  Vec d_o, dq(sz(a.seq * dh)), dk(sz(a.seq * dh)), dv(sz(a.seq * dh));
  for_each_head(a, q_all, q_width, q_offset, k_all, v_all, kv_width, k_offset, v_offset,
                [&](long s, long h, long kv, const Vec& q, const Vec& k, const Vec& v) {
                  gather(dy, a.heads * dh, h * dh, s * a.seq, a.seq, dh, d_o);
                  attention_backward_reference(p, q.data(), k.data(), v.data(), d_o.data(), dq.data(), dk.data(),
                                               dv.data());
                  scatter_add(dq, q_width, q_offset + h * dh, s * a.seq, a.seq, dh, dq_all);
                  scatter_add(dk, kv_width, k_offset + kv * dh, s * a.seq, a.seq, dh, dk_all);
                  scatter_add(dv, kv_width, v_offset + kv * dh, s * a.seq, a.seq, dh, dv_all);
                });
}

AttentionShape gpt2_attention(const Gpt2Config& c) { return {c.batch, c.seq, c.heads, c.heads, c.hidden / c.heads}; }

// Mean cross-entropy of logits [T, V] against targets, turning the logits into softmax probabilities in
// place: -log softmax = logsumexp(logits) - logits[target], the log-sum-exp taken from the row maximum.
double cross_entropy(Vec& logits, const std::vector<long>& targets, long T, long V) {
  double total = 0;
  for (long t = 0; t < T; ++t) {
    double* row = &logits[sz(t * V)];
    double max = row[0];
    for (long j = 1; j < V; ++j) max = std::max(max, row[j]);
    double sum = 0;
    for (long j = 0; j < V; ++j) sum += std::exp(row[j] - max);
    const double lse = max + std::log(sum);
    total += lse - row[targets[sz(t)]];
    for (long j = 0; j < V; ++j) row[j] = std::exp(row[j] - lse);
  }
  return total / static_cast<double>(T);
}
// dloss/dlogits = (softmax - onehot(target)) / T.
Vec cross_entropy_backward(const Vec& probs, const std::vector<long>& targets, long T, long V) {
  Vec d = probs;
  for (long t = 0; t < T; ++t) d[sz(t * V + targets[sz(t)])] -= 1.0;
  for (double& v : d) v /= static_cast<double>(T);
  return d;
}

// x[t, :] += table[ids[t], :] for the T = ids.size() rows of x [T, d]: an embedding lookup.
void add_rows(const Vec& table, const std::vector<long>& ids, long d, Vec& x) {
  for (std::size_t t = 0; t < ids.size(); ++t) {
    for (long i = 0; i < d; ++i) x[t * sz(d) + sz(i)] += table[sz(ids[t] * d + i)];
  }
}
// Its backward: each row's gradient goes to its id's row of dtable.
void add_rows_backward(const Vec& dx, const std::vector<long>& ids, long d, Vec& dtable) {
  for (std::size_t t = 0; t < ids.size(); ++t) {
    for (long i = 0; i < d; ++i) dtable[sz(ids[t] * d + i)] += dx[t * sz(d) + sz(i)];
  }
}

// The residual stream's update x += branch.
void add_into(Vec& x, const Vec& branch) {
  for (std::size_t i = 0; i < x.size(); ++i) x[i] += branch[i];
}

// The LM head and the loss of both models: logits = z W^T (W [V, d], no bias) into probs, which
// cross_entropy() turns into the softmax probabilities; returns the mean loss.
double head_loss(const Vec& z, const Vec& w, const std::vector<long>& targets, long T, long d, long V, Vec& probs) {
  linear(z, w, Vec{}, T, d, V, probs);
  return cross_entropy(probs, targets, T, V);
}
// Its backward: dW += dlogits^T z, and dz = dlogits W returned.
Vec head_loss_backward(const Vec& probs, const Vec& z, const Vec& w, const std::vector<long>& targets, long T, long d,
                       long V, Vec& dw) {
  const Vec dlogits = cross_entropy_backward(probs, targets, T, V);
  Vec dz, no_bias;
  linear_backward(dlogits, z, w, T, d, V, dz, dw, no_bias);
  return dz;
}

// Shared checks: token ids inside the vocabulary, and every parameter tensor at its shape.
void check_tokens(const char* who, long T, long V, const std::vector<long>& tokens, const std::vector<long>& targets) {
  if (tokens.size() != sz(T) || targets.size() != sz(T)) {
    throw std::invalid_argument(std::string(who) + ": tokens and targets must hold batch x seq entries");
  }
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= V || targets[i] < 0 || targets[i] >= V) {
      throw std::invalid_argument(std::string(who) + ": a token or target is outside the vocabulary");
    }
  }
}
// After a model's own checks of its sizes: the tokens, and every tensor of p at the size it has in
// `zero`, the model's zero parameters of configuration c.
template <class Config, class Params>
void check_tokens_and_params(const char* who, const Config& c, const Params& zero, const Params& p,
                             const std::vector<long>& tokens, const std::vector<long>& targets) {
  check_tokens(who, c.tokens(), c.vocab, tokens, targets);
  const auto want = named_tensors(zero), got = named_tensors(p);
  if (got.size() != want.size()) throw std::invalid_argument(std::string(who) + ": wrong number of blocks");
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (got[i].second->size() != want[i].second->size()) {
      throw std::invalid_argument(std::string(who) + ": parameter " + want[i].first + " has the wrong size");
    }
  }
}

// What the forward keeps for the backward, per block.
struct BlockCache {
  Vec a, qkv, y, c, h, g;  // LN1 out, QKV, attention out, LN2 out, fc pre-activation, gelu(h)
  NormCache ln1, ln2;
};
struct Forward {
  std::vector<BlockCache> blocks;
  Vec z, probs;  // LN_f out, softmax(logits) [b·s, V]
  NormCache lnf;
  double loss = 0;
};

// GPT-2's tensors (sizes from c; named_tensors reads only the names and members).
Layout<Gpt2Params, Gpt2Block> gpt2_layout(const Gpt2Config& c) {
  const long d = c.hidden, ff = c.ffn();
  using P = Gpt2Params;
  using B = Gpt2Block;
  return {{{"wte", &P::wte, c.vocab * d, Init::weight}, {"wpe", &P::wpe, c.seq * d, Init::weight}},
          {{"ln1_g", &B::ln1_g, d, Init::gain},
           {"ln1_b", &B::ln1_b, d, Init::bias},
           {"w_qkv", &B::w_qkv, 3 * d * d, Init::weight},
           {"b_qkv", &B::b_qkv, 3 * d, Init::bias},
           {"w_o", &B::w_o, d * d, Init::weight},
           {"b_o", &B::b_o, d, Init::bias},
           {"ln2_g", &B::ln2_g, d, Init::gain},
           {"ln2_b", &B::ln2_b, d, Init::bias},
           {"w_fc", &B::w_fc, ff * d, Init::weight},
           {"b_fc", &B::b_fc, ff, Init::bias},
           {"w_proj", &B::w_proj, d * ff, Init::weight},
           {"b_proj", &B::b_proj, d, Init::bias}},
          {{"lnf_g", &P::lnf_g, d, Init::gain}, {"lnf_b", &P::lnf_b, d, Init::bias}}};
}

// Each token's position in its sequence, for the wpe lookup.
std::vector<long> positions(const Gpt2Config& c) {
  std::vector<long> pos(sz(c.tokens()));
  for (long t = 0; t < c.tokens(); ++t) pos[sz(t)] = t % c.seq;
  return pos;
}

void check_inputs(const Gpt2Config& c, const Gpt2Params& p, const std::vector<long>& tokens,
                  const std::vector<long>& targets) {
  if (c.vocab <= 0 || c.seq <= 0 || c.hidden <= 0 || c.heads <= 0 || c.layers <= 0 || c.batch <= 0 ||
      c.hidden % c.heads != 0) {
    throw std::invalid_argument("gpt2 reference: sizes must be positive and heads must divide hidden");
  }
  check_tokens_and_params("gpt2 reference", c, gpt2_zero_params(c), p, tokens, targets);
}

Forward forward(const Gpt2Config& c, const Gpt2Params& p, const std::vector<long>& tokens,
                const std::vector<long>& targets) {
  check_inputs(c, p, tokens, targets);
  const long T = c.tokens(), d = c.hidden, ff = c.ffn(), V = c.vocab;
  Forward f;
  Vec x(sz(T * d), 0.0);
  add_rows(p.wte, tokens, d, x);
  add_rows(p.wpe, positions(c), d, x);
  f.blocks.resize(sz(c.layers));
  Vec tmp;
  for (long l = 0; l < c.layers; ++l) {
    const Gpt2Block& w = p.blocks[sz(l)];
    BlockCache& b = f.blocks[sz(l)];
    layer_norm(x, w.ln1_g, w.ln1_b, T, d, c.ln_eps, b.a, b.ln1);
    linear(b.a, w.w_qkv, w.b_qkv, T, d, 3 * d, b.qkv);
    attention(gpt2_attention(c), b.qkv, 3 * d, 0, b.qkv, b.qkv, 3 * d, d, 2 * d, b.y);
    linear(b.y, w.w_o, w.b_o, T, d, d, tmp);
    add_into(x, tmp);
    layer_norm(x, w.ln2_g, w.ln2_b, T, d, c.ln_eps, b.c, b.ln2);
    linear(b.c, w.w_fc, w.b_fc, T, d, ff, b.h);
    b.g.resize(b.h.size());
    for (std::size_t i = 0; i < b.h.size(); ++i) b.g[i] = mlp_ref::activation(mlp_ref::Act::gelu, b.h[i]);
    linear(b.g, w.w_proj, w.b_proj, T, ff, d, tmp);
    add_into(x, tmp);
  }
  layer_norm(x, p.lnf_g, p.lnf_b, T, d, c.ln_eps, f.z, f.lnf);
  f.loss = head_loss(f.z, p.wte, targets, T, d, V, f.probs);  // tied head: W = wte
  return f;
}

}  // namespace

double gpt2_loss_and_gradients(const Gpt2Config& c, const Gpt2Params& p, const std::vector<long>& tokens,
                               const std::vector<long>& targets, Gpt2Params& grads) {
  const Forward f = forward(c, p, tokens, targets);
  const long T = c.tokens(), d = c.hidden, ff = c.ffn(), V = c.vocab;
  grads = gpt2_zero_params(c);

  // Head: the first of the tied matrix's two gradients.
  const Vec dz = head_loss_backward(f.probs, f.z, p.wte, targets, T, d, V, grads.wte);
  Vec dx(sz(T * d), 0.0);  // the residual stream's gradient
  layer_norm_backward(dz, f.lnf, p.lnf_g, T, d, dx, grads.lnf_g, grads.lnf_b);

  for (long l = c.layers - 1; l >= 0; --l) {
    Vec dg, dh, dc, dy, da, dqkv(sz(T * 3 * d), 0.0);  // fresh: linear_backward adds into its dx
    const Gpt2Block& w = p.blocks[sz(l)];
    Gpt2Block& gw = grads.blocks[sz(l)];
    const BlockCache& b = f.blocks[sz(l)];
    // MLP branch x += gelu(c W_fc^T + b_fc) W_proj^T + b_proj: the branch sees dx as its output's
    // gradient, and its input gradient joins dx through LN2.
    linear_backward(dx, b.g, w.w_proj, T, ff, d, dg, gw.w_proj, gw.b_proj);
    dh.resize(dg.size());
    for (std::size_t i = 0; i < dg.size(); ++i) {
      dh[i] = dg[i] * mlp_ref::activation_derivative(mlp_ref::Act::gelu, b.h[i]);
    }
    linear_backward(dh, b.c, w.w_fc, T, d, ff, dc, gw.w_fc, gw.b_fc);
    layer_norm_backward(dc, b.ln2, w.ln2_g, T, d, dx, gw.ln2_g, gw.ln2_b);
    // Attention branch x += attention(LN1(x) W_qkv^T + b_qkv) W_o^T + b_o.
    linear_backward(dx, b.y, w.w_o, T, d, d, dy, gw.w_o, gw.b_o);
    attention_backward(gpt2_attention(c), b.qkv, 3 * d, 0, b.qkv, b.qkv, 3 * d, d, 2 * d, dy, dqkv, dqkv, dqkv);
    linear_backward(dqkv, b.a, w.w_qkv, T, d, 3 * d, da, gw.w_qkv, gw.b_qkv);
    layer_norm_backward(da, b.ln1, w.ln1_g, T, d, dx, gw.ln1_g, gw.ln1_b);
  }
  // Embeddings: each token's residual gradient goes to its wte row (the tied matrix's second
  // gradient) and to its position's wpe row.
  add_rows_backward(dx, tokens, d, grads.wte);
  add_rows_backward(dx, positions(c), d, grads.wpe);
  return f.loss;
}

// ---- llama ------------------------------------------------------------------------------------

void rope_rotate(double* x, long head_dim, long position, double theta, bool inverse) {
  const long half = head_dim / 2;
  for (long i = 0; i < half; ++i) {
    const double angle =
        static_cast<double>(position) * std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
    const double cs = std::cos(angle), sn = inverse ? -std::sin(angle) : std::sin(angle);
    const double a = x[i], b = x[i + half];
    x[i] = a * cs - b * sn;
    x[i + half] = b * cs + a * sn;
  }
}

namespace {

// RMSNorm over the last axis of [rows, d]: y = g x r with r = 1/sqrt(mean(x²) + eps); keeps x and r.
struct RmsCache {
  Vec x, r;
};
void rms_norm(const Vec& x, const Vec& g, long rows, long d, double eps, Vec& y, RmsCache& cache) {
  y.assign(sz(rows * d), 0.0);
  cache.x = x;
  cache.r.assign(sz(rows), 0.0);
  for (long t = 0; t < rows; ++t) {
    double ms = 0;
    for (long i = 0; i < d; ++i) ms += x[sz(t * d + i)] * x[sz(t * d + i)];
    const double r = 1.0 / std::sqrt(ms / static_cast<double>(d) + eps);
    cache.r[sz(t)] = r;
    for (long i = 0; i < d; ++i) y[sz(t * d + i)] = g[sz(i)] * x[sz(t * d + i)] * r;
  }
}
// dr/dx_i = -r³ x_i / d, so dx_i = r g_i dy_i - x_i r³ (1/d) sum_j g_j dy_j x_j (added to dx);
// dg_i += dy_i x_i r.
void rms_norm_backward(const Vec& dy, const RmsCache& cache, const Vec& g, long rows, long d, Vec& dx, Vec& dg) {
  for (long t = 0; t < rows; ++t) {
    const double r = cache.r[sz(t)];
    double dot = 0;
    for (long i = 0; i < d; ++i) {
      const double dyi = dy[sz(t * d + i)], xi = cache.x[sz(t * d + i)];
      dg[sz(i)] += dyi * xi * r;
      dot += g[sz(i)] * dyi * xi;
    }
    const double k = r * r * r * dot / static_cast<double>(d);
    for (long i = 0; i < d; ++i) {
      dx[sz(t * d + i)] += r * g[sz(i)] * dy[sz(t * d + i)] - cache.x[sz(t * d + i)] * k;
    }
  }
}

// Every head of every token of a [T, heads·dh] matrix rotated by RoPE at the token's position.
void rope_all(const LlamaConfig& c, Vec& m, long heads, bool inverse) {
  const long dh = c.head_dim();
  for (long t = 0; t < c.tokens(); ++t) {
    for (long h = 0; h < heads; ++h) rope_rotate(&m[sz((t * heads + h) * dh)], dh, t % c.seq, c.rope_theta, inverse);
  }
}

AttentionShape llama_attention(const LlamaConfig& c) { return {c.batch, c.seq, c.heads, c.kv_heads, c.head_dim()}; }

// Llama's tensors (sizes from c; named_tensors reads only the names and members).
Layout<LlamaParams, LlamaBlock> llama_layout(const LlamaConfig& c) {
  // heads = 0 (named_tensors' default configuration): no sizes, and no division by zero.
  const long d = c.hidden, ff = c.ffn, kv = c.heads > 0 ? c.kv_heads * c.head_dim() : 0;
  using P = LlamaParams;
  using B = LlamaBlock;
  return {{{"tok_emb", &P::tok_emb, c.vocab * d, Init::weight}},
          {{"attn_norm", &B::attn_norm, d, Init::gain},
           {"w_q", &B::w_q, d * d, Init::weight},
           {"w_k", &B::w_k, kv * d, Init::weight},
           {"w_v", &B::w_v, kv * d, Init::weight},
           {"w_o", &B::w_o, d * d, Init::weight},
           {"mlp_norm", &B::mlp_norm, d, Init::gain},
           {"w_gate", &B::w_gate, ff * d, Init::weight},
           {"w_up", &B::w_up, ff * d, Init::weight},
           {"w_down", &B::w_down, d * ff, Init::weight}},
          {{"final_norm", &P::final_norm, d, Init::gain}, {"head", &P::head, c.vocab * d, Init::weight}}};
}

struct LlamaBlockCache {
  Vec a, q, k, v, y, c, gate, up, m;  // q and k after RoPE; m = silu(gate) * up
  RmsCache norm1, norm2;
};
struct LlamaForward {
  std::vector<LlamaBlockCache> blocks;
  Vec z, probs;
  RmsCache norm_f;
  double loss = 0;
};

void check_inputs(const LlamaConfig& c, const LlamaParams& p, const std::vector<long>& tokens,
                  const std::vector<long>& targets) {
  if (c.vocab <= 0 || c.seq <= 0 || c.hidden <= 0 || c.heads <= 0 || c.kv_heads <= 0 || c.ffn <= 0 || c.layers <= 0 ||
      c.batch <= 0 || c.hidden % c.heads != 0 || c.heads % c.kv_heads != 0 || c.head_dim() % 2 != 0) {
    throw std::invalid_argument(
        "llama reference: sizes must be positive, heads must divide hidden into even head sizes and kv_heads "
        "must divide heads");
  }
  check_tokens_and_params("llama reference", c, llama_zero_params(c), p, tokens, targets);
}

LlamaForward forward(const LlamaConfig& c, const LlamaParams& p, const std::vector<long>& tokens,
                     const std::vector<long>& targets) {
  check_inputs(c, p, tokens, targets);
  const long T = c.tokens(), d = c.hidden, ff = c.ffn, V = c.vocab, kv = c.kv_heads * c.head_dim();
  LlamaForward f;
  Vec x(sz(T * d), 0.0);
  add_rows(p.tok_emb, tokens, d, x);
  f.blocks.resize(sz(c.layers));
  const Vec no_bias;
  Vec tmp;
  for (long l = 0; l < c.layers; ++l) {
    const LlamaBlock& w = p.blocks[sz(l)];
    LlamaBlockCache& b = f.blocks[sz(l)];
    rms_norm(x, w.attn_norm, T, d, c.norm_eps, b.a, b.norm1);
    linear(b.a, w.w_q, no_bias, T, d, d, b.q);
    linear(b.a, w.w_k, no_bias, T, d, kv, b.k);
    linear(b.a, w.w_v, no_bias, T, d, kv, b.v);
    rope_all(c, b.q, c.heads, false);
    rope_all(c, b.k, c.kv_heads, false);
    attention(llama_attention(c), b.q, d, 0, b.k, b.v, kv, 0, 0, b.y);
    linear(b.y, w.w_o, no_bias, T, d, d, tmp);
    add_into(x, tmp);
    rms_norm(x, w.mlp_norm, T, d, c.norm_eps, b.c, b.norm2);
    linear(b.c, w.w_gate, no_bias, T, d, ff, b.gate);
    linear(b.c, w.w_up, no_bias, T, d, ff, b.up);
    b.m.resize(b.gate.size());
    for (std::size_t i = 0; i < b.m.size(); ++i) b.m[i] = mlp_ref::silu(b.gate[i]) * b.up[i];
    linear(b.m, w.w_down, no_bias, T, ff, d, tmp);
    add_into(x, tmp);
  }
  rms_norm(x, p.final_norm, T, d, c.norm_eps, f.z, f.norm_f);
  f.loss = head_loss(f.z, p.head, targets, T, d, V, f.probs);
  return f;
}

}  // namespace

double llama_loss_and_gradients(const LlamaConfig& c, const LlamaParams& p, const std::vector<long>& tokens,
                                const std::vector<long>& targets, LlamaParams& grads) {
  const LlamaForward f = forward(c, p, tokens, targets);
  const long T = c.tokens(), d = c.hidden, ff = c.ffn, V = c.vocab, kv = c.kv_heads * c.head_dim();
  grads = llama_zero_params(c);
  Vec no_bias;
  const Vec dz = head_loss_backward(f.probs, f.z, p.head, targets, T, d, V, grads.head);
  Vec dx(sz(T * d), 0.0);
  rms_norm_backward(dz, f.norm_f, p.final_norm, T, d, dx, grads.final_norm);
  for (long l = c.layers - 1; l >= 0; --l) {
    const LlamaBlock& w = p.blocks[sz(l)];
    LlamaBlock& gw = grads.blocks[sz(l)];
    const LlamaBlockCache& b = f.blocks[sz(l)];
    // SwiGLU branch: dm = dx W_down; m = silu(gate) * up gives dgate = dm * up * silu'(gate) and
    // dup = dm * silu(gate); both projections of c add into dc.
    Vec dm, dc, dy, da, dq(sz(T * d), 0.0), dk(sz(T * kv), 0.0), dv(sz(T * kv), 0.0);
    linear_backward(dx, b.m, w.w_down, T, ff, d, dm, gw.w_down, no_bias);
    Vec dgate(dm.size()), dup(dm.size());
    for (std::size_t i = 0; i < dm.size(); ++i) {
      dgate[i] = dm[i] * b.up[i] * mlp_ref::silu_derivative(b.gate[i]);
      dup[i] = dm[i] * mlp_ref::silu(b.gate[i]);
    }
    linear_backward(dgate, b.c, w.w_gate, T, d, ff, dc, gw.w_gate, no_bias);
    linear_backward(dup, b.c, w.w_up, T, d, ff, dc, gw.w_up, no_bias);
    rms_norm_backward(dc, b.norm2, w.mlp_norm, T, d, dx, gw.mlp_norm);
    // Attention branch: through W_o, attention (K/V gradients summed over each group), then RoPE's
    // inverse rotation back to the projections' outputs.
    linear_backward(dx, b.y, w.w_o, T, d, d, dy, gw.w_o, no_bias);
    attention_backward(llama_attention(c), b.q, d, 0, b.k, b.v, kv, 0, 0, dy, dq, dk, dv);
    rope_all(c, dq, c.heads, true);
    rope_all(c, dk, c.kv_heads, true);
    linear_backward(dq, b.a, w.w_q, T, d, d, da, gw.w_q, no_bias);
    linear_backward(dk, b.a, w.w_k, T, d, kv, da, gw.w_k, no_bias);
    linear_backward(dv, b.a, w.w_v, T, d, kv, da, gw.w_v, no_bias);
    rms_norm_backward(da, b.norm1, w.attn_norm, T, d, dx, gw.attn_norm);
  }
  add_rows_backward(dx, tokens, d, grads.tok_emb);
  return f.loss;
}

// ---- the entry points: each model's layout, forward and backward through the shared code ---------

std::vector<std::pair<std::string, std::vector<double>*>> named_tensors(Gpt2Params& p) {
  return named(p, gpt2_layout(Gpt2Config{}));
}
std::vector<std::pair<std::string, std::vector<double>*>> named_tensors(LlamaParams& p) {
  return named(p, llama_layout(LlamaConfig{}));
}

std::vector<std::pair<std::string, const std::vector<double>*>> named_tensors(const Gpt2Params& p) {
  return const_named_tensors(p);
}
std::vector<std::pair<std::string, const std::vector<double>*>> named_tensors(const LlamaParams& p) {
  return const_named_tensors(p);
}

Gpt2Params gpt2_zero_params(const Gpt2Config& c) { return zero_params(gpt2_layout(c), c.layers); }
LlamaParams llama_zero_params(const LlamaConfig& c) { return zero_params(llama_layout(c), c.layers); }

Gpt2Params gpt2_random_params(const Gpt2Config& c, unsigned long seed, double weight_std, double bias_std) {
  return random_params(gpt2_layout(c), c.layers, seed, weight_std, bias_std);
}
LlamaParams llama_random_params(const LlamaConfig& c, unsigned long seed, double weight_std, double gain_std) {
  return random_params(llama_layout(c), c.layers, seed, weight_std, gain_std);
}

double gpt2_loss(const Gpt2Config& c, const Gpt2Params& p, const std::vector<long>& tokens,
                 const std::vector<long>& targets) {
  return forward(c, p, tokens, targets).loss;
}
double llama_loss(const LlamaConfig& c, const LlamaParams& p, const std::vector<long>& tokens,
                  const std::vector<long>& targets) {
  return forward(c, p, tokens, targets).loss;
}

}  // namespace wflops::model_ref
