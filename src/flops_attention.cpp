#include "flops.hpp"

namespace wflops::flops {

double attention_forward(double batch, double heads, double seq, double head_dim, bool causal) {
  const double full = 2.0 * gemm(seq, seq, head_dim) * batch * heads;  // QK^T and PV
  return causal ? full / 2.0 : full;
}
double attention_backward(double batch, double heads, double seq, double head_dim, bool causal) {
  return 2.5 * attention_forward(batch, heads, seq, head_dim, causal);
}

}  // namespace wflops::flops
