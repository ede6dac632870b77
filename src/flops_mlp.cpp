#include <cmath>

#include "flops.hpp"

namespace wflops::flops {

double mlp_weights(double d, double d_ff) { return 2.0 * d * d_ff; }
double mlp_forward(double d, double d_ff, double tokens) {
  return linear_forward(mlp_weights(d, d_ff), tokens);
}
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
// ---- end of elementwise passes and casts ------------------------------------------------------

}  // namespace wflops::flops
