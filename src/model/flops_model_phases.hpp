// The FLOP model of each phase of a model step (the model_step family), part of the module flops.hpp
// (same conventions, namespace wflops::flops): what a result's phase_flops_<phase> counters hold, so
// that a phase's tau is its FLOPs over its time (src/model/model_phases.hpp names the phases).
//
//  - A GEMM component (qkv, out_proj, mlp_up, mlp_down, lm_head) is one weight matrix [out, in]
//    applied to the step's T tokens, `per_step` times (L for a block's matrices, once for the head).
//    Its forward is one GEMM, T x out x in, linear_forward(out·in, T); its backward the two gradient
//    GEMMs, linear_backward(out·in, T). Summed over the components this is model_step_weight_flops.
//  - The attention core: the attention FLOPs of flops_attention.hpp, causal, per layer
//    attention_forward / attention_backward(b, h, s, d/h); summed it is model_step_attention_flops.
//  - Every other phase (embedding, norms, residual adds, activation, loss, optimizer) does no
//    weight FLOPs; a result states its least bytes instead (phase_bytes_<phase>).
#pragma once
#include <string>
#include <vector>

#include "model/flops_model.hpp"

namespace wflops::flops {

struct ModelGemm {
  std::string component;  // the phase component: "qkv", "out_proj", "mlp_up", "mlp_down", "lm_head"
  double out = 0;         // the weight's output features (the GEMM's n, as the matmul family names it)
  double in = 0;          // its input features (the GEMM's k); the forward's m is the step's tokens
  double per_step = 0;    // how many such matrices a step applies: L, or 1 for the LM head
};

// The weight matrices of a step in forward order:
//   gpt2:  qkv [3d, d] (q, k and v as one projection), out_proj [d, d], mlp_up [d_ff, d],
//          mlp_down [d, d_ff], each L times; lm_head [V, d] once.
//   llama: qkv [d + 2·kvh·d/h, d] (grouped-query K and V are kvh heads wide), out_proj [d, d],
//          mlp_up [2·d_ff, d] (SwiGLU's gate and up projections, read as one GEMM of both),
//          mlp_down [d, d_ff], each L times; lm_head [V, d] once.
// Their out·in·per_step sum to model_weights(m) (tests/cpu/test_breakdown.cpp checks it).
std::vector<ModelGemm> model_gemms(const ModelStepShape& m);

// Weight FLOPs of one GEMM component's forward (linear_forward) or backward (linear_backward) phase
// over the whole step; 0 for a component that is not a GEMM.
double model_phase_weight_flops(const ModelStepShape& m, const std::string& component, bool backward);

// Attention FLOPs of the attention core's forward or backward phase over the whole step (causal,
// L layers of b·h heads of d/h over s tokens).
double model_phase_attention_flops(const ModelStepShape& m, bool backward);

}  // namespace wflops::flops
