#include "flops.hpp"

namespace wflops::flops {

double mlp_weights(double d, double d_ff) { return 2.0 * d * d_ff; }
double mlp_forward(double d, double d_ff, double tokens) {
  return linear_forward(mlp_weights(d, d_ff), tokens);
}
double mlp_training_step(double d, double d_ff, double tokens) {
  return linear_training_step(mlp_weights(d, d_ff), tokens);
}

}  // namespace wflops::flops
