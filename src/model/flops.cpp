#include "model/flops.hpp"

namespace wflops::flops {

double gemm(double m, double n, double k) { return 2.0 * m * n * k; }

double gemm_bytes(double m, double n, double k, double a_elem_bytes, double b_elem_bytes, double c_elem_bytes) {
  return m * k * a_elem_bytes + k * n * b_elem_bytes + m * n * c_elem_bytes;
}

double linear_forward(double weights, double tokens) { return 2.0 * weights * tokens; }
double linear_backward(double weights, double tokens) { return 4.0 * weights * tokens; }
double linear_training_step(double weights, double tokens) {
  return linear_forward(weights, tokens) + linear_backward(weights, tokens);
}

double training_run(double params, double tokens) { return linear_training_step(params, tokens); }

}  // namespace wflops::flops
