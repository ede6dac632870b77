// The phases of a model_step result (docs/model.md, "Phases"): the names the GPU workload writes
// and `wflops breakdown` reads, so the two agree. One phase per component and direction,
// phase_ms_<fwd|bwd>_<component>, plus phase_ms_optimizer; the harness adds phase_pct_<phase>.
// A GEMM phase (and the attention core) states its FLOPs, phase_flops_<phase>
// (flops_model_phases.hpp), so its tau is FLOPs over time; a memory-bound phase states its least
// bytes, phase_bytes_<phase>, and the harness writes its bandwidth, phase_gbps_<phase>.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "model/flops_model.hpp"
#include "registry.hpp"

namespace wflops::model_phases {

// gemm: weight FLOPs (a weight matrix times activations, with its bias: the forward's add and the
// backward's reduction belong to the GEMM's phase, fused into an epilogue or not); attention: the
// attention core, attention FLOPs; memory: no FLOPs counted, its least bytes instead.
enum class Kind { gemm, attention, memory };

struct Component {
  const char* name;
  Kind kind;
};

// The components in the order the forward runs them. The backward runs them in reverse.
//   embedding  token lookup (+ the position table for gpt2); backward: the scatter-add of its rows
//   norm       every LayerNorm / RMSNorm: two per block and the final one
//   qkv        the QKV projection (its bias)
//   attention  the attention core: scores, causal mask, softmax, times V (eager: s x s matrices)
//   out_proj   the output projection (its bias)
//   residual   the two residual adds per block; backward: the gradient adds where branches meet
//   mlp_up     d -> d_ff (gpt2 with its bias; llama gate and up)
//   activation GELU (gpt2) or SwiGLU's silu(gate) x up (llama)
//   mlp_down   d_ff -> d (its bias)
//   lm_head    the [T, d] x [d, V] logits GEMM (the tied embedding matrix for gpt2)
//   loss       softmax and cross-entropy over the logits; backward: their gradient
inline constexpr Component kComponents[] = {
    {"embedding", Kind::memory}, {"norm", Kind::memory},     {"qkv", Kind::gemm},    {"attention", Kind::attention},
    {"out_proj", Kind::gemm},    {"residual", Kind::memory}, {"mlp_up", Kind::gemm}, {"activation", Kind::memory},
    {"mlp_down", Kind::gemm},    {"lm_head", Kind::gemm},    {"loss", Kind::memory},
};
// AdamW over every parameter's fp32 state, with the cast of the fp32 master weights to the
// compute dtype for the next step: memory-bound, no FLOPs counted.
inline constexpr const char* kOptimizer = "optimizer";

// Counter prefixes; the phase name follows ("phase_ms_fwd_qkv"). phase_bytes_ is the registry's
// kPhaseBytesPrefix, the one the harness turns into phase_gbps_.
inline constexpr const char* kMs = "phase_ms_";
inline constexpr const char* kPct = "phase_pct_";
inline constexpr const char* kFlops = "phase_flops_";
inline constexpr const char* kBytes = kPhaseBytesPrefix;
inline constexpr const char* kGbps = "phase_gbps_";

// The model step's own counters beside flops (weight FLOPs, the family's tau): attention FLOPs,
// model FLOPs (weight + attention: the MFU numerator) and those as % of the datasheet peak.
inline constexpr const char* kAttnFlops = "attn_flops";
inline constexpr const char* kModelFlops = "model_flops";
inline constexpr const char* kPctPeakModel = "pct_peak_model";

inline constexpr const char* kFamily = "model_step";

enum class Direction { fwd, bwd };

// "fwd_qkv", "bwd_loss".
std::string phase_name(Direction direction, const char* component);

struct Phase {
  std::string name;       // "bwd_mlp_down", "optimizer"
  std::string component;  // "mlp_down", "optimizer"
  Direction direction = Direction::fwd;
  Kind kind = Kind::memory;
};
// Every phase in the order a step runs them: the forward's, the backward's (components reversed),
// then the optimizer: 23 phases.
const std::vector<Phase>& phases();
const Phase* find_phase(const std::string& name);

// Where a fused implementation puts the work of a phase it does not run on its own: the fused
// residual-add + norm kernel does fwd_residual inside fwd_norm and bwd_residual inside bwd_norm; the
// bias + GELU epilogue does fwd_activation inside fwd_mlp_up and the dGELU epilogue of the
// d_ff-wide input gradient does bwd_activation inside bwd_mlp_down. Such a phase is left out of the
// result (absent, not 0), and the breakdown compares it with the phase that holds it.
// llama's activation is SwiGLU, which no cuBLASLt epilogue computes: its fused step runs the
// SwiGLU kernel as a phase of its own, so only the residual phases fold there.
// nullptr for a phase that the fused implementation of `arch` does not fold into another.
const char* fused_into(const std::string& phase, flops::ModelArch arch);

// The benchmark name of a step, "model_step/<impl>/<dtype>/arch:gpt2/d:1600/L:8/h:25/s:256/b:32/V:50257"
// (llama: ".../arch:llama/d:4096/L:2/h:32/kvh:8/ff:14336/s:4096/b:1/V:128256"), and back.
std::string model_step_name(const std::string& impl, const std::string& dtype, const flops::ModelStepShape& m);
// The shape of a model_step name; nullopt when it is not one or a key is missing or not a count.
std::optional<flops::ModelStepShape> parse_model_step_shape(const std::string& name);

}  // namespace wflops::model_phases
