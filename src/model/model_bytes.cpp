#include "model/model_bytes.hpp"

#include <iterator>

#include "model/flops.hpp"
#include "model/model_phases.hpp"

namespace wflops::flops {

namespace {
constexpr double kIndex = 4.0;  // a token id or target
constexpr double kFp32 = 4.0;   // a statistic, a gradient of a parameter, a master weight
}  // namespace

// Derivations beside the declarations in model_bytes.hpp.
double embedding_forward_bytes(double tokens, double d, double elem, double position_rows) {
  return kIndex * tokens + tokens * d * elem + position_rows * d * elem + tokens * d * elem;
}

double embedding_backward_bytes(double tokens, double d, double elem, double position_rows) {
  return kIndex * tokens + tokens * d * elem + 2.0 * kFp32 * tokens * d + position_rows * d * kFp32;
}

double norm_forward_bytes(double rows, double cols, double elem, double norm_params, double stats) {
  return 2.0 * rows * cols * elem + norm_params * elem + kFp32 * stats * rows;
}

double norm_backward_bytes(double rows, double cols, double elem, double norm_params, double stats) {
  return 3.0 * rows * cols * elem + kFp32 * stats * rows + norm_params * (elem + kFp32);
}

double add_norm_forward_bytes(double rows, double cols, double elem, double norm_params, double stats) {
  return norm_forward_bytes(rows, cols, elem, norm_params, stats) + 2.0 * rows * cols * elem;
}

double add_norm_backward_bytes(double rows, double cols, double elem, double norm_params, double stats) {
  return norm_backward_bytes(rows, cols, elem, norm_params, stats) + rows * cols * elem;
}

double loss_forward_bytes(double tokens, double vocab, double elem) {
  return tokens * vocab * elem + kIndex * tokens + kFp32 * tokens + kFp32;
}

double loss_backward_bytes(double tokens, double vocab, double elem) {
  return 2.0 * tokens * vocab * elem + kIndex * tokens + kFp32 * tokens;
}

std::map<std::string, double> model_phase_bytes(const ModelStepShape& m, double elem, bool fused) {
  const bool gpt2 = m.arch == ModelArch::gpt2;
  const double T = m.tokens(), d = m.hidden, L = m.layers;
  const double positions = gpt2 ? m.seq : 0.0;
  // One norm's parameters are the final norm's (LayerNorm 2d, RMSNorm d); its saved statistics
  // are LayerNorm's mean and 1/std or RMSNorm's 1/rms.
  const ModelParams params = model_params(m);
  const double norm_params = params.final_norm;
  const double stats = gpt2 ? 2.0 : 1.0;
  const double adds = 2.0 * L;      // residual adds (and gradient adds) per step
  const double norms = adds + 1.0;  // two per block and the final one
  const double hidden = T * m.ffn;  // the activation's [T, d_ff]

  std::map<std::string, double> out;
  out["fwd_embedding"] = embedding_forward_bytes(T, d, elem, positions);
  out["bwd_embedding"] = embedding_backward_bytes(T, d, elem, positions);
  out["fwd_norm"] = norms * norm_forward_bytes(T, d, elem, norm_params, stats);
  out["bwd_norm"] = norms * norm_backward_bytes(T, d, elem, norm_params, stats);
  out["fwd_residual"] = adds * residual_add_bytes(T * d, elem);
  out["bwd_residual"] = adds * residual_add_bytes(T * d, elem);
  out["fwd_activation"] = L * (gpt2 ? activation_forward_bytes(hidden, elem) : swiglu_forward_bytes(hidden, elem));
  out["bwd_activation"] = L * (gpt2 ? activation_backward_bytes(hidden, elem) : swiglu_backward_bytes(hidden, elem));
  out["fwd_loss"] = loss_forward_bytes(T, m.vocab, elem);
  out["bwd_loss"] = loss_backward_bytes(T, m.vocab, elem);
  out[model_phases::kOptimizer] = adamw_bytes(params.total) + cast_bytes(params.total, kFp32, elem);
  if (fused) {
    // The folded phases are left out (their work is in a GEMM epilogue or in the norm kernels;
    // llama's SwiGLU stays a phase of its own),
    // and the norms are the fused add + norm kernels but for the first forward and the last
    // backward one.
    for (auto it = out.begin(); it != out.end();) {
      it = model_phases::fused_into(it->first, m.arch) ? out.erase(it) : std::next(it);
    }
    out["fwd_norm"] = adds * add_norm_forward_bytes(T, d, elem, norm_params, stats) +
                      norm_forward_bytes(T, d, elem, norm_params, stats);
    out["bwd_norm"] = adds * add_norm_backward_bytes(T, d, elem, norm_params, stats) +
                      norm_backward_bytes(T, d, elem, norm_params, stats);
  }
  return out;
}

}  // namespace wflops::flops
