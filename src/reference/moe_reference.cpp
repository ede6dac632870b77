#include "reference/moe_reference.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "model/flops.hpp"

namespace wflops::moe {

namespace {
constexpr double kPi = 3.14159265358979323846;
}  // namespace

std::string routing_name(Routing r) { return r == Routing::token_choice ? "token_choice" : "expert_choice"; }

std::vector<long> top_k_experts(const double* probs, long experts, long k) {
  std::vector<long> order(static_cast<std::size_t>(experts));
  std::iota(order.begin(), order.end(), 0L);
  // Higher probability first; on a tie the lower index (stable sort keeps index order).
  std::stable_sort(order.begin(), order.end(), [&](long a, long b) { return probs[a] > probs[b]; });
  order.resize(static_cast<std::size_t>(std::min(k, experts)));
  return order;
}

std::vector<long> expert_choice_tokens(const double* group_probs, long group_tokens, long experts, long expert,
                                       long take) {
  std::vector<long> order(static_cast<std::size_t>(group_tokens));
  std::iota(order.begin(), order.end(), 0L);
  std::stable_sort(order.begin(), order.end(), [&](long a, long b) {
    return group_probs[a * experts + expert] > group_probs[b * experts + expert];
  });
  order.resize(static_cast<std::size_t>(std::min(take, group_tokens)));
  std::sort(order.begin(), order.end());
  return order;
}

std::vector<Assignment> route(const Dims& dims, const std::vector<double>& probs) {
  const long n = dims.experts();
  std::vector<std::vector<Assignment>> per_expert(static_cast<std::size_t>(n));
  if (dims.routing == Routing::token_choice) {
    for (long t = 0; t < dims.T; ++t) {
      for (long e : top_k_experts(&probs[static_cast<std::size_t>(t * n)], n, dims.G)) {
        per_expert[static_cast<std::size_t>(e)].push_back({t, e, probs[static_cast<std::size_t>(t * n + e)]});
      }
    }
  } else {
    const long group = flops::kMoeExpertChoiceGroup, take = group / dims.E;
    for (long g0 = 0; g0 < dims.T; g0 += group) {
      const double* block = &probs[static_cast<std::size_t>(g0 * n)];
      for (long e = 0; e < n; ++e) {
        for (long t : expert_choice_tokens(block, group, n, e, take)) {
          per_expert[static_cast<std::size_t>(e)].push_back(
              {g0 + t, e, probs[static_cast<std::size_t>((g0 + t) * n + e)]});
        }
      }
    }
  }
  std::vector<Assignment> all;
  for (const auto& v : per_expert) all.insert(all.end(), v.begin(), v.end());
  return all;
}

double gelu(double x) {
  const double c = std::sqrt(2.0 / kPi);
  return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
}

double gelu_derivative(double x) {
  const double c = std::sqrt(2.0 / kPi);
  const double u = c * (x + 0.044715 * x * x * x);
  const double th = std::tanh(u);
  return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * c * (1.0 + 3.0 * 0.044715 * x * x);
}

void softmax(const double* logits, long n, double* probs) {
  const double m = *std::max_element(logits, logits + n);
  double sum = 0;
  for (long i = 0; i < n; ++i) sum += probs[i] = std::exp(logits[i] - m);
  for (long i = 0; i < n; ++i) probs[i] /= sum;
}

void softmax_backward(const double* probs, const double* dprobs, long n, double* dlogits) {
  double s = 0;
  for (long i = 0; i < n; ++i) s += probs[i] * dprobs[i];
  for (long i = 0; i < n; ++i) dlogits[i] = probs[i] * (dprobs[i] - s);
}

void expert_row_forward(const double* w1e, const double* w2e, long d, long f, const double* x, double* h, double* out) {
  for (long i = 0; i < f; ++i) {
    double acc = 0;
    for (long j = 0; j < d; ++j) acc += w1e[i * d + j] * x[j];
    h[i] = acc;
  }
  for (long c = 0; c < d; ++c) {
    double acc = 0;
    for (long i = 0; i < f; ++i) acc += w2e[c * f + i] * gelu(h[i]);
    out[c] = acc;
  }
}

void expert_row_backward_input(const double* w1e, const double* w2e, long d, long f, const double* h,
                               const double* dout, double* dx_acc) {
  for (long i = 0; i < f; ++i) {
    double da = 0;
    for (long c = 0; c < d; ++c) da += w2e[c * f + i] * dout[c];
    const double dh = da * gelu_derivative(h[i]);
    for (long j = 0; j < d; ++j) dx_acc[j] += w1e[i * d + j] * dh;
  }
}

std::string dims_error(const Dims& dims) {
  const std::string why = flops::moe_config_error(dims.d, dims.E, dims.G);
  if (!why.empty()) return why;
  if (dims.T < 1) return fmt::format("the token count must be positive (T = {})", dims.T);
  if (dims.routing == Routing::token_choice && dims.G > dims.experts()) return "top-G needs G <= E*G experts";
  if (dims.routing == Routing::expert_choice) return flops::moe_expert_choice_error(dims.E, dims.T);
  return "";
}

namespace {

std::vector<double> matmul_nt(const std::vector<double>& a, const std::vector<double>& b, long rows, long cols,
                              long inner) {  // a[rows, inner] b[cols, inner]^T
  std::vector<double> c(static_cast<std::size_t>(rows * cols), 0.0);
  for (long r = 0; r < rows; ++r) {
    for (long k = 0; k < cols; ++k) {
      double acc = 0;
      for (long j = 0; j < inner; ++j) acc += a[r * inner + j] * b[k * inner + j];
      c[r * cols + k] = acc;
    }
  }
  return c;
}

}  // namespace

Result reference_routed_by(const Dims& dims, const Inputs& in, const std::vector<double>& probs_for_routing) {
  const std::string why = dims_error(dims);
  if (!why.empty()) throw std::runtime_error(why);
  const long d = dims.d, n = dims.experts(), f = dims.hidden(), T = dims.T;
  Result r;
  r.logits = matmul_nt(in.x, in.wr, T, n, d);
  r.probs.resize(r.logits.size());
  for (long t = 0; t < T; ++t) softmax(&r.logits[t * n], n, &r.probs[t * n]);
  r.assignments = route(dims, probs_for_routing.empty() ? r.probs : probs_for_routing);
  r.expert_counts.assign(static_cast<std::size_t>(n), 0);
  r.y.assign(static_cast<std::size_t>(T * d), 0.0);
  r.dx.assign(r.y.size(), 0.0);
  r.dw1.assign(in.w1.size(), 0.0);
  r.dw2.assign(in.w2.size(), 0.0);
  std::vector<double> dprobs(r.probs.size(), 0.0), h(f), out(d), dout(d), act(f), dh(f);
  for (const Assignment& a : r.assignments) {
    ++r.expert_counts[a.expert];
    // The score the layer multiplies by is the token's own probability (routing only chooses).
    const double score = r.probs[a.token * n + a.expert];
    const double* w1e = &in.w1[a.expert * f * d];
    const double* w2e = &in.w2[a.expert * d * f];
    const double* xt = &in.x[a.token * d];
    const double* dyt = &in.dy[a.token * d];
    expert_row_forward(w1e, w2e, d, f, xt, h.data(), out.data());
    double dscore = 0;
    for (long c = 0; c < d; ++c) {
      r.y[a.token * d + c] += score * out[c];
      dscore += dyt[c] * out[c];
      dout[c] = score * dyt[c];
    }
    dprobs[a.token * n + a.expert] += dscore;
    expert_row_backward_input(w1e, w2e, d, f, h.data(), dout.data(), &r.dx[a.token * d]);
    for (long i = 0; i < f; ++i) act[i] = gelu(h[i]);
    for (long c = 0; c < d; ++c) {
      for (long i = 0; i < f; ++i) r.dw2[a.expert * d * f + c * f + i] += dout[c] * act[i];
    }
    for (long i = 0; i < f; ++i) {
      double da = 0;
      for (long c = 0; c < d; ++c) da += w2e[c * f + i] * dout[c];
      dh[i] = da * gelu_derivative(h[i]);
      for (long j = 0; j < d; ++j) r.dw1[a.expert * f * d + i * d + j] += dh[i] * xt[j];
    }
  }
  r.dlogits.assign(r.probs.size(), 0.0);
  for (long t = 0; t < T; ++t) softmax_backward(&r.probs[t * n], &dprobs[t * n], n, &r.dlogits[t * n]);
  r.dwr.assign(in.wr.size(), 0.0);
  for (long t = 0; t < T; ++t) {
    for (long e = 0; e < n; ++e) {
      const double g = r.dlogits[t * n + e];
      for (long j = 0; j < d; ++j) {
        r.dwr[e * d + j] += g * in.x[t * d + j];
        r.dx[t * d + j] += g * in.wr[e * d + j];
      }
    }
  }
  return r;
}

Result reference(const Dims& dims, const Inputs& in) { return reference_routed_by(dims, in, {}); }

double load_imbalance(const std::vector<long>& counts) {
  if (counts.empty()) return 0;
  const double total = static_cast<double>(std::accumulate(counts.begin(), counts.end(), 0L));
  if (total == 0) return 0;
  const double mean = total / static_cast<double>(counts.size());
  return static_cast<double>(*std::max_element(counts.begin(), counts.end())) / mean;
}

double router_weight_bound(long d) { return d > 0 ? 3.0 / std::sqrt(static_cast<double>(d)) : 0.0; }

}  // namespace wflops::moe
