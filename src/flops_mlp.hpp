// The FLOP model: MLP training steps.
// Part of the module flops.hpp (same conventions, namespace wflops::flops).
#pragma once

namespace wflops::flops {

// ---- MLP block (d -> d_ff -> d) ---------------------------------------------------------------
// Two weight matrices, d x d_ff and d_ff x d: 2*d*d_ff weights (biases are not weight FLOPs).
// E.g. d = 1600, d_ff = 6400: 20,480,000 weights.
double mlp_weights(double d, double d_ff);
double mlp_forward(double d, double d_ff, double tokens);        // 2 * weights * T
double mlp_training_step(double d, double d_ff, double tokens);  // 6 * weights * T

}  // namespace wflops::flops
