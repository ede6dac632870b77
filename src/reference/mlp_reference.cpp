#include "reference/mlp_reference.hpp"

#include <cmath>
#include <cstddef>

namespace wflops::mlp_ref {

namespace {

constexpr double kSqrt2OverPi = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kGeluCubic = 0.044715;

std::size_t at(long row, long cols, long col) {
  return static_cast<std::size_t>(row) * static_cast<std::size_t>(cols) + static_cast<std::size_t>(col);
}

bool has_bias(const MlpHost& m) { return !m.gated && !m.b1.empty(); }

// h[t, j] = x_t . W1[j, :] + b1[j] (j < w1_rows)
double pre_activation(const MlpHost& m, long t, long j) {
  double s = has_bias(m) ? m.b1[j] : 0.0;
  const float* x = &m.x[at(t, m.d, 0)];
  const float* w = &m.w1[at(j, m.d, 0)];
  for (long k = 0; k < m.d; ++k) s += static_cast<double>(x[k]) * w[k];
  return s;
}

// Column i of W2 (the weights hidden unit i feeds), gathered once: da[t, i] = dy_t . W2[:, i].
std::vector<double> w2_column(const MlpHost& m, long i) {
  std::vector<double> c(m.d);
  for (long k = 0; k < m.d; ++k) c[k] = m.w2[at(k, m.d_ff, i)];
  return c;
}

// The activation and its input gradient for hidden unit j < d_ff of token t, from the row h (length
// w1_rows) and da[t, j]: writes a[t, j] and dh[t, j] (gated also dh[t, d_ff + j]).
void activate(const MlpHost& m, const std::vector<double>& h, long j, double da, double& a, std::vector<double>& dh) {
  if (!m.gated) {
    a = activation(m.act, h[j]);
    dh[j] = da * activation_derivative(m.act, h[j]);
    return;
  }
  const double g = h[j], u = h[m.d_ff + j];
  a = silu(g) * u;
  dh[j] = da * u * silu_derivative(g);
  dh[m.d_ff + j] = da * silu(g);
}

}  // namespace

long w1_rows(const MlpHost& m) { return m.gated ? 2 * m.d_ff : m.d_ff; }

double silu(double x) { return x / (1.0 + std::exp(-x)); }

double silu_derivative(double x) {
  const double s = 1.0 / (1.0 + std::exp(-x));
  return s * (1.0 + x * (1.0 - s));
}

double activation(Act act, double x) {
  switch (act) {
    case Act::none: return x;
    case Act::relu: return x > 0 ? x : 0.0;
    case Act::gelu: return 0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + kGeluCubic * x * x * x)));
  }
  return x;
}

double activation_derivative(Act act, double x) {
  switch (act) {
    case Act::none: return 1.0;
    case Act::relu: return x > 0 ? 1.0 : 0.0;  // 0 at exactly 0, as cuBLASLt's DRELU bitmask
    case Act::gelu: {
      // d/dx of 0.5 x (1 + tanh(u)), u = c (x + 0.044715 x^3): 0.5 (1 + tanh u) + 0.5 x sech^2(u) u'
      const double u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
      const double t = std::tanh(u);
      const double du = kSqrt2OverPi * (1.0 + 3.0 * kGeluCubic * x * x);
      return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
    }
  }
  return 1.0;
}

TokenRow token_row(const MlpHost& m, long t) {
  TokenRow r;
  const long rows = w1_rows(m);
  r.h.resize(rows);
  r.a.resize(m.d_ff);
  r.dh.resize(rows);
  r.da.assign(m.d_ff, 0.0);
  for (long k = 0; k < m.d; ++k) {  // da = dy_t W2, walking W2 by rows (contiguous)
    const double dyk = m.dy[at(t, m.d, k)];
    const float* w2 = &m.w2[at(k, m.d_ff, 0)];
    for (long j = 0; j < m.d_ff; ++j) r.da[j] += dyk * w2[j];
  }
  for (long j = 0; j < rows; ++j) r.h[j] = pre_activation(m, t, j);
  for (long j = 0; j < m.d_ff; ++j) activate(m, r.h, j, r.da[j], r.a[j], r.dh);
  r.y.assign(m.d, 0.0);
  r.dx.assign(m.d, 0.0);
  for (long k = 0; k < m.d; ++k) {
    double y = has_bias(m) ? m.b2[k] : 0.0;
    const float* w2 = &m.w2[at(k, m.d_ff, 0)];
    for (long j = 0; j < m.d_ff; ++j) y += r.a[j] * w2[j];
    if (m.residual) y += m.x[at(t, m.d, k)];
    r.y[k] = y;
  }
  for (long j = 0; j < rows; ++j) {
    const float* w1 = &m.w1[at(j, m.d, 0)];
    for (long k = 0; k < m.d; ++k) r.dx[k] += r.dh[j] * w1[k];
  }
  if (m.residual) {
    for (long k = 0; k < m.d; ++k) r.dx[k] += m.dy[at(t, m.d, k)];
  }
  return r;
}

void hidden_column(const MlpHost& m, long j, std::vector<double>& h, std::vector<double>& a) {
  h.resize(m.tokens);
  a.resize(m.tokens);
  for (long t = 0; t < m.tokens; ++t) {
    h[t] = pre_activation(m, t, j);
    a[t] = m.gated ? silu(h[t]) * pre_activation(m, t, m.d_ff + j) : activation(m.act, h[t]);
  }
}

std::vector<double> dh_column(const MlpHost& m, long i) {
  const long j = m.gated ? i % m.d_ff : i;  // the hidden unit (gated: gate row j or up row d_ff + j)
  const std::vector<double> w2 = w2_column(m, j);
  std::vector<double> dh(m.tokens);
  for (long t = 0; t < m.tokens; ++t) {
    const float* dy = &m.dy[at(t, m.d, 0)];
    double da = 0;
    for (long k = 0; k < m.d; ++k) da += dy[k] * w2[k];
    if (!m.gated) {
      dh[t] = da * activation_derivative(m.act, pre_activation(m, t, i));
      continue;
    }
    const double g = pre_activation(m, t, j), u = pre_activation(m, t, m.d_ff + j);
    dh[t] = i < m.d_ff ? da * u * silu_derivative(g) : da * silu(g);
  }
  return dh;
}

std::vector<double> dw2_column(const MlpHost& m, long j, const std::vector<long>& rows) {
  std::vector<double> h, a;
  hidden_column(m, j, h, a);
  std::vector<double> out(rows.size(), 0.0);
  for (long t = 0; t < m.tokens; ++t) {
    for (std::size_t r = 0; r < rows.size(); ++r) out[r] += m.dy[at(t, m.d, rows[r])] * a[t];
  }
  return out;
}

std::vector<double> dw1_row(const MlpHost& m, long i, const std::vector<long>& cols, double* db1_i) {
  const std::vector<double> dh = dh_column(m, i);
  std::vector<double> out(cols.size(), 0.0);
  double bias = 0;
  for (long t = 0; t < m.tokens; ++t) {
    for (std::size_t c = 0; c < cols.size(); ++c) out[c] += dh[t] * m.x[at(t, m.d, cols[c])];
    bias += dh[t];
  }
  if (db1_i) *db1_i = bias;
  return out;
}

std::vector<double> db2(const MlpHost& m) {
  std::vector<double> out(m.d, 0.0);
  for (long t = 0; t < m.tokens; ++t) {
    for (long k = 0; k < m.d; ++k) out[k] += m.dy[at(t, m.d, k)];
  }
  return out;
}

double loss(const MlpHost& m) {
  double l = 0;
  for (long t = 0; t < m.tokens; ++t) {
    const TokenRow r = token_row(m, t);
    for (long k = 0; k < m.d; ++k) l += m.dy[at(t, m.d, k)] * r.y[k];
  }
  return l;
}

}  // namespace wflops::mlp_ref
