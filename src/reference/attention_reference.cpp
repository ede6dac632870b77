#include "reference/attention_reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace wflops {

namespace {

bool visible(const AttentionProblem& p, long query, long key) { return !p.causal || key <= query; }

double dot(const double* a, const double* b, long n) {
  double sum = 0;
  for (long i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// exp(S_ij - L_i): the probability of key j for query i, 0 where masked or where no key is seen.
double probability(const AttentionProblem& p, const double* q, const double* k, const double* lse, long i, long j) {
  if (!visible(p, i, j) || std::isinf(lse[i])) return 0.0;
  return std::exp(p.scale * dot(q + i * p.head_dim, k + j * p.head_dim, p.head_dim) - lse[i]);
}

}  // namespace

void attention_forward_rows(const AttentionProblem& p, const double* q, const double* k, const double* v,
                            const std::vector<long>& rows, double* o_rows, double* lse_rows) {
  const long d = p.head_dim;
  std::vector<double> scores(static_cast<std::size_t>(p.seq));
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const long i = rows[r];
    double max = -std::numeric_limits<double>::infinity();
    for (long j = 0; j < p.seq; ++j) {
      scores[j] = visible(p, i, j) ? p.scale * dot(q + i * d, k + j * d, d) : -std::numeric_limits<double>::infinity();
      max = std::max(max, scores[j]);
    }
    double* o = o_rows + r * d;
    std::fill(o, o + d, 0.0);
    if (std::isinf(max)) {  // no visible key
      lse_rows[r] = std::numeric_limits<double>::infinity();
      continue;
    }
    double sum = 0;
    for (long j = 0; j < p.seq; ++j) {
      if (std::isinf(scores[j])) continue;
      const double e = std::exp(scores[j] - max);
      sum += e;
      for (long c = 0; c < d; ++c) o[c] += e * v[j * d + c];
    }
    for (long c = 0; c < d; ++c) o[c] /= sum;
    lse_rows[r] = max + std::log(sum);
  }
}

void attention_forward_reference(const AttentionProblem& p, const double* q, const double* k, const double* v,
                                 double* o, double* lse) {
  std::vector<long> all(static_cast<std::size_t>(p.seq));
  std::iota(all.begin(), all.end(), 0L);
  attention_forward_rows(p, q, k, v, all, o, lse);
}

void attention_backward_rows(const AttentionProblem& p, const double* q, const double* k, const double* v,
                             const double* o, const double* lse, const double* d_o, const std::vector<long>& q_rows,
                             double* dq_rows, const std::vector<long>& k_rows, double* dk_rows, double* dv_rows) {
  const long d = p.head_dim;
  std::vector<double> big_d(static_cast<std::size_t>(p.seq));  // D_i = dO_i . O_i
  for (long i = 0; i < p.seq; ++i) big_d[i] = dot(d_o + i * d, o + i * d, d);
  for (std::size_t r = 0; r < q_rows.size(); ++r) {
    const long i = q_rows[r];
    double* dq = dq_rows + r * d;
    std::fill(dq, dq + d, 0.0);
    for (long j = 0; j < p.seq; ++j) {
      const double prob = probability(p, q, k, lse, i, j);
      if (prob == 0.0) continue;
      const double ds = prob * (dot(d_o + i * d, v + j * d, d) - big_d[i]);
      for (long c = 0; c < d; ++c) dq[c] += p.scale * ds * k[j * d + c];
    }
  }
  for (std::size_t r = 0; r < k_rows.size(); ++r) {
    const long j = k_rows[r];
    double* dk = dk_rows + r * d;
    double* dv = dv_rows + r * d;
    std::fill(dk, dk + d, 0.0);
    std::fill(dv, dv + d, 0.0);
    for (long i = 0; i < p.seq; ++i) {
      const double prob = probability(p, q, k, lse, i, j);
      if (prob == 0.0) continue;
      const double ds = prob * (dot(d_o + i * d, v + j * d, d) - big_d[i]);
      for (long c = 0; c < d; ++c) {
        dv[c] += prob * d_o[i * d + c];
        dk[c] += p.scale * ds * q[i * d + c];
      }
    }
  }
}

void attention_backward_reference(const AttentionProblem& p, const double* q, const double* k, const double* v,
                                  const double* d_o, double* dq, double* dk, double* dv) {
  const std::size_t n = static_cast<std::size_t>(p.seq * p.head_dim);
  std::vector<double> o(n), lse(static_cast<std::size_t>(p.seq));
  attention_forward_reference(p, q, k, v, o.data(), lse.data());
  std::vector<long> all(static_cast<std::size_t>(p.seq));
  std::iota(all.begin(), all.end(), 0L);
  attention_backward_rows(p, q, k, v, o.data(), lse.data(), d_o, all, dq, all, dk, dv);
}

}  // namespace wflops
