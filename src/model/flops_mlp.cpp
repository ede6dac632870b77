#include <cmath>

#include "model/flops.hpp"

namespace wflops::flops {

double mlp_weights(double d, double d_ff) { return 2.0 * d * d_ff; }
double mlp_forward(double d, double d_ff, double tokens) { return linear_forward(mlp_weights(d, d_ff), tokens); }
double mlp_training_step(double d, double d_ff, double tokens) {
  return linear_training_step(mlp_weights(d, d_ff), tokens);
}

double mlp_bias_params(double d, double d_ff) { return d_ff + d; }

double swiglu_hidden(double d) { return std::ceil(8.0 * d / 3.0 / 64.0) * 64.0; }
double swiglu_weights(double d, double d_ff) { return 3.0 * d * d_ff; }

// ---- Elementwise passes and casts (bytes) ------------------------------------------------------
// Derivations beside the declarations in flops_mlp.hpp.
double bias_add_bytes(double rows, double cols, double elem) { return (2.0 * rows * cols + cols) * elem; }
double activation_forward_bytes(double n, double elem) { return 2.0 * n * elem; }
double activation_backward_bytes(double n, double elem) { return 3.0 * n * elem; }
double residual_add_bytes(double n, double elem) { return 3.0 * n * elem; }
double bias_grad_bytes(double rows, double cols, double elem, double db_elem) {
  return rows * cols * elem + cols * db_elem;
}
double cast_bytes(double n, double in_elem, double out_elem) { return n * (in_elem + out_elem); }
double copy_bytes(double n, double elem) { return 2.0 * n * elem; }
double adamw_bytes(double n) { return (4.0 + 3.0) * 4.0 * n; }
double multiply_bytes(double n, double elem) { return 3.0 * n * elem; }
double swiglu_forward_bytes(double n, double elem) { return 3.0 * n * elem; }
double swiglu_backward_bytes(double n, double elem) { return 5.0 * n * elem; }

MlpPhaseBytes mlp_phase_bytes(double d, double d_ff, double tokens, double elem, double parameters,
                              const MlpPasses& p) {
  const double grad_elem = p.mixed ? 4.0 : elem;
  const double hidden = tokens * d_ff, io = tokens * d;
  MlpPhaseBytes out;
  double& e = out.elementwise;
  if (p.gated) {
    if (p.gate_fused) {
      e += swiglu_forward_bytes(hidden, elem);
      if (p.backward) e += swiglu_backward_bytes(hidden, elem);
    } else {
      e += activation_forward_bytes(hidden, elem) + multiply_bytes(hidden, elem);
      if (p.backward) e += 2.0 * multiply_bytes(hidden, elem) + activation_backward_bytes(hidden, elem);
    }
  } else if (!p.fused) {
    if (p.bias) e += bias_add_bytes(tokens, d_ff, elem) + bias_add_bytes(tokens, d, elem);
    if (p.bias || p.activation) e += activation_forward_bytes(hidden, elem);
    if (p.residual) e += residual_add_bytes(io, elem);
    if (p.backward) {
      if (p.bias) {
        e += bias_grad_bytes(tokens, d, elem, grad_elem) + bias_grad_bytes(tokens, d_ff, elem, grad_elem);
      }
      if (p.activation) e += activation_backward_bytes(hidden, elem);
      if (p.residual) e += residual_add_bytes(io, elem);
    }
  }
  if (p.mixed) {
    out.cast = cast_bytes(parameters, 4.0, elem);
    if (p.backward) out.optimizer = adamw_bytes(parameters);
  }
  return out;
}
// ---- end of elementwise passes and casts ------------------------------------------------------

}  // namespace wflops::flops
