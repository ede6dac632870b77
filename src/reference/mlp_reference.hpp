// The fp64 CPU reference of the MLP training step (mlp_step/*, mlp_fwd/*), the one every variant
// is verified against. Layout as on the GPU (and in PyTorch): activations row-major [T, d],
// weights as nn.Linear, W1 [d_ff, d] and W2 [d, d_ff] row-major.
//   forward:  h = x W1^T + b1,  a = act(h),  y = a W2^T + b2 (+ x with a residual)
//   backward from dy: dW2 = dy^T a, db2 = sum_t dy, da = dy W2, dh = da * act'(h),
//                     dW1 = dh^T x, db1 = sum_t dh, dx = dh W1 (+ dy with a residual)
// The inputs are held as float (exact for every fp16/bf16 value the GPU stored); all arithmetic is
// in double, without rounding the intermediates h, a, dh to the GPU's 16-bit type: verification
// relies on the tolerance for that (one rounding is at most 2^-9 relative per element).
// Everything is computed per token row or per hidden column, so a check on the real shape costs a
// few dot products over d, d_ff or T, never the whole step.
//
// Gated (SwiGLU) MLP: W1 [2 d_ff, d] stacks the gate rows (0..d_ff-1) over the up rows
// (d_ff..2d_ff-1), so h = x W1^T is [T, 2 d_ff] = [g | u]; no biases.
//   forward:  a = silu(g) * u,  y = a W2^T
//   backward: da = dy W2, dg = da * u * silu'(g), du = da * silu(g), dh = [dg | du],
//             dW1 = dh^T x, dx = dh W1 (the same two formulas over 2 d_ff rows).
#pragma once
#include <vector>

namespace wflops::mlp_ref {

// GELU is the tanh approximation (cuBLASLt's and our kernels'); ReLU'(0) = 0.
enum class Act { none, relu, gelu };
double activation(Act act, double x);
double activation_derivative(Act act, double x);
// silu(x) = x sigmoid(x); silu'(x) = sigmoid(x) (1 + x (1 - sigmoid(x))).
double silu(double x);
double silu_derivative(double x);

struct MlpHost {
  long d = 0, d_ff = 0, tokens = 0;
  Act act = Act::none;
  bool residual = false;
  bool gated = false;         // SwiGLU (act and biases unused): W1 is [2 d_ff, d]
  std::vector<float> x, dy;   // [tokens, d]
  std::vector<float> w1;      // [d_ff, d] ([2 d_ff, d] gated)
  std::vector<float> w2;      // [d, d_ff]
  std::vector<float> b1, b2;  // [d_ff], [d]; both empty when the MLP has no bias
};

// Rows of W1 (hidden pre-activations per token): d_ff, or 2 d_ff gated.
long w1_rows(const MlpHost& m);

// Everything the step computes for one token t (h and dh have w1_rows(m) entries).
struct TokenRow {
  std::vector<double> h, a, y;     // [d_ff] (gated [2 d_ff]), [d_ff], [d]
  std::vector<double> da, dh, dx;  // [d_ff], [d_ff] (gated [2 d_ff]), [d]
};
TokenRow token_row(const MlpHost& m, long t);

// Pre-activation and activation of hidden unit j < d_ff for every token: h[t, j], a[t, j] (gated:
// h is the gate g[t, j]).
void hidden_column(const MlpHost& m, long j, std::vector<double>& h, std::vector<double>& a);
// dh[t, i] for every token, i < w1_rows(m).
std::vector<double> dh_column(const MlpHost& m, long i);

// dW2[rows[r], j] = sum_t dy[t, rows[r]] a[t, j] (dW2 is [d, d_ff]).
std::vector<double> dw2_column(const MlpHost& m, long j, const std::vector<long>& rows);
// dW1[i, cols[c]] = sum_t dh[t, i] x[t, cols[c]] (dW1 is [w1_rows, d]); also db1[i] = sum_t dh[t, i].
std::vector<double> dw1_row(const MlpHost& m, long i, const std::vector<long>& cols, double* db1_i);
// db2[k] = sum_t dy[t, k], every k.
std::vector<double> db2(const MlpHost& m);

// The scalar whose gradient the step computes: L = sum_t dy_t . y_t (so dL/dy = dy). Used by the
// finite-difference test of the reference's own gradients.
double loss(const MlpHost& m);

}  // namespace wflops::mlp_ref
