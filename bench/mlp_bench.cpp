// MLP training steps (mlp_step) and their forward passes (mlp_fwd): the linear MLP, mixed precision,
// and the activation + bias (+ residual) MLP unfused and fused, at the reference configuration of
// the A100 table (d = 1600, d_ff = 6400, 8192 tokens) and the MLPs of h = 768 ... 8192 (d_ff = 4h)
// at 2k to 64k tokens. Every step is read against the linear step of its dtype and shape
// (pct_baseline); the reporter adds pct_best_gemm. The gated MLP (SwiGLU, d_ff = 8/3 d rounded to
// 64) is read against the linear step of the 4d MLP of the same d and T (other weights: tau is per
// weight FLOP).
#include <fmt/core.h>

#include <set>
#include <stdexcept>
#include <string>

#include "bench_families.hpp"
#include "cuda/mlp_step.hpp"
#include "model/flops.hpp"
#include "model_parts.hpp"

namespace wflops {

namespace {

constexpr long kRefD = 1600, kRefFf = 6400, kRefTokens = 8192;

std::string mlp_shape(long d, long d_ff, long tokens) { return fmt::format("d:{}/ff:{}/tok:{}", d, d_ff, tokens); }

std::string describe(const MlpVariant& v) {
  if (v.gated) {
    return std::string("SwiGLU, gate and up in one GEMM, no bias, ") +
           (v.gate_fused ? "our fused SwiGLU kernels" : "eager's separate silu / multiply passes");
  }
  if (v.word == "linear") return "linear MLP (two GEMMs, no bias or activation)";
  if (v.word == "mixed_linear") return "linear MLP, fp32 master weights cast each step, fp32 gradients, AdamW";
  std::string s = fmt::format("{} + bias{}", kernels::activation_name(v.act), v.residual ? " + residual" : "");
  if (v.mixed) s += ", fp32 master weights cast each step, fp32 gradients, AdamW";
  return s + (v.fused ? ", cuBLASLt epilogues" : ", cuBLAS GEMMs + our elementwise kernels");
}

// Registers one step (or forward pass); returns its name.
std::string add_mlp(Registry& r, bool forward_only, const MlpVariant& v, DType dtype, long d, long d_ff, long tokens,
                    std::set<std::string> suites, const std::string& label) {
  BenchSpec spec(forward_only ? "mlp_fwd" : "mlp_step", v.word, dtype, mlp_shape(d, d_ff, tokens));
  if (v.gated) {  // 3 d d_ff weights (flops_mlp.hpp), 2 (forward) or 6 (step) FLOPs per weight and token
    const double weights = flops::swiglu_weights(d, d_ff);
    spec.flops = forward_only ? flops::linear_forward(weights, tokens) : flops::linear_training_step(weights, tokens);
  } else {
    spec.flops = forward_only ? flops::mlp_forward(d, d_ff, tokens) : flops::mlp_training_step(d, d_ff, tokens);
  }
  spec.bytes = 0;  // a step's least traffic is not one figure; the FLOP model counts it per pass
  // ... and sums it by part of the time split, which the harness turns into phase_gbps_<part>.
  flops::MlpPasses passes;
  passes.bias = v.bias;
  passes.activation = v.act != kernels::Activation::none;
  passes.residual = v.residual;
  passes.fused = v.fused;
  passes.gated = v.gated;
  passes.gate_fused = v.gate_fused;
  passes.mixed = v.mixed;
  passes.backward = !forward_only;
  const double parameters = (v.gated ? flops::swiglu_weights(d, d_ff) : flops::mlp_weights(d, d_ff)) +
                            (v.bias ? flops::mlp_bias_params(d, d_ff) : 0.0);
  const flops::MlpPhaseBytes phase_bytes =
      flops::mlp_phase_bytes(d, d_ff, tokens, static_cast<double>(dtype_bytes(dtype)), parameters, passes);
  for (const auto& [part, bytes] :
       {std::pair{"elementwise", phase_bytes.elementwise}, std::pair{"cast", phase_bytes.cast},
        std::pair{"optimizer", phase_bytes.optimizer}}) {
    if (bytes > 0) spec.counters[std::string(kPhaseBytesPrefix) + part] = bytes;
  }
  spec.suites = std::move(suites);
  // No label: a benchmark registered before keeps its own (Registry::add).
  if (!label.empty()) spec.label = fmt::format("{}: {}", label, describe(v));
  // The gated MLP's baseline is the linear step of the 4d MLP (about the same weights).
  const std::string linear_shape = mlp_shape(d, v.gated ? 4 * d : d_ff, tokens);
  const std::string linear = benchmark_name(spec.family, "linear", std::string(dtype_name(dtype)), linear_shape);
  if (v.word != "linear" && r.find(linear)) spec.baseline = linear;
  const MlpConfig config{v, dtype, d, d_ff, tokens, forward_only};
  spec.make = [config] { return make_mlp_workload(config); };
  return r.add(std::move(spec));
}

const MlpVariant& variant(const char* word) {
  for (const MlpVariant& v : mlp_variants()) {
    if (v.word == word) return v;
  }
  throw std::logic_error(std::string("no MLP variant ") + word);
}

// Every variant at one shape into `suites`: the linear steps first (the baselines), then mixed
// precision in fp16 and bf16, the activation variants in bf16 (and fp16 at the reference), and the
// forward passes of the linear, unfused and fused GELU + residual MLPs in bf16.
void add_shape(Registry& r, long d, long d_ff, long tokens, const std::set<std::string>& suites,
               const std::string& label, bool reference) {
  for (DType t : {DType::fp16, DType::bf16}) add_mlp(r, false, variant("linear"), t, d, d_ff, tokens, suites, label);
  for (DType t : {DType::fp16, DType::bf16}) {
    add_mlp(r, false, variant("mixed_linear"), t, d, d_ff, tokens, suites, label);
  }
  for (const MlpVariant& v : mlp_variants()) {
    if (v.word == "linear" || v.word == "mixed_linear" || v.gated) continue;  // gated: add_swiglu
    if (v.word == "mixed_unfused_relu_residual") {
      add_mlp(r, false, v, DType::fp16, d, d_ff, tokens, suites, label);
      continue;
    }
    add_mlp(r, false, v, DType::bf16, d, d_ff, tokens, suites, label);
    if (reference) add_mlp(r, false, v, DType::fp16, d, d_ff, tokens, suites, label);
  }
  for (const char* word : {"linear", "unfused_gelu_residual", "fused_gelu_residual"}) {
    add_mlp(r, true, variant(word), DType::bf16, d, d_ff, tokens, suites, label);
  }
}

// The gated MLP (SwiGLU, d_ff = swiglu_hidden(d)) at d and T, both variants, after the linear 4d
// steps it is read against: the steps in fp16 and bf16, the forward passes in bf16. `quick` adds
// the bf16 fused step to the quick suite.
void add_swiglu(Registry& r, long d, long tokens, const std::set<std::string>& suites, bool quick) {
  const long d_ff = static_cast<long>(flops::swiglu_hidden(static_cast<double>(d)));
  const std::string label = fmt::format(
      "SwiGLU MLP d={} d_ff={} T={}, 3*d*d_ff = {} weights (baseline: the 4d MLP, 2*d*4d = {}; "
      "tau per weight)",
      d, d_ff, tokens, static_cast<long>(flops::swiglu_weights(d, d_ff)),
      static_cast<long>(flops::mlp_weights(d, 4 * d)));
  for (const char* word : {"unfused_swiglu", "fused_swiglu"}) {
    for (DType t : {DType::fp16, DType::bf16}) {
      std::set<std::string> in = suites;
      if (quick && t == DType::bf16 && std::string(word) == "fused_swiglu") in.insert("quick");
      add_mlp(r, false, variant(word), t, d, d_ff, tokens, in, label);
    }
    add_mlp(r, true, variant(word), DType::bf16, d, d_ff, tokens, suites, label);
  }
}

}  // namespace

std::string add_mlp_step_with_baseline(Registry& r, const std::string& word, DType dtype, long d, long d_ff,
                                       long tokens, const std::set<std::string>& suites, const std::string& label) {
  const MlpVariant& v = variant(word.c_str());
  if (!mlp_unsupported_reason({v, dtype, d, d_ff, tokens, false}).empty()) return "";
  // Its own baseline, the linear step of the same shape (of the 4d MLP for the gated one, as
  // add_mlp reads it), runs in the same suites (pct_baseline).
  add_mlp(r, false, variant("linear"), dtype, d, v.gated ? 4 * d : d_ff, tokens, suites, label);
  return add_mlp(r, false, v, dtype, d, d_ff, tokens, suites, label);
}

std::string add_dense_mlp_baseline(Registry& r, DType dtype, long d, long d_ff, long tokens,
                                   const std::set<std::string>& suites) {
  return add_mlp_step_with_baseline(r, "fused_gelu", dtype, d, d_ff, tokens, suites,
                                    fmt::format("dense MLP d={} d_ff={} T={}", d, d_ff, tokens));
}

void add_mlp_benchmarks(Registry& r) {
  const std::string ref_label = fmt::format("reference MLP d={} d_ff={} T={}", kRefD, kRefFf, kRefTokens);
  // The seed suite: the A100 table's three MLP rows (its matmul row is in matmul_bench.cpp).
  add_mlp(r, false, variant("linear"), DType::fp16, kRefD, kRefFf, kRefTokens, {"mlp", "seed"}, ref_label);
  add_mlp(r, false, variant("mixed_linear"), DType::fp16, kRefD, kRefFf, kRefTokens, {"mlp", "seed"}, ref_label);
  add_mlp(r, false, variant("mixed_unfused_relu_residual"), DType::fp16, kRefD, kRefFf, kRefTokens, {"mlp", "seed"},
          ref_label);
  // The quick suite: bf16 at the reference configuration.
  for (const char* word : {"linear", "unfused_gelu_residual", "fused_gelu_residual", "mixed_linear"}) {
    add_mlp(r, false, variant(word), DType::bf16, kRefD, kRefFf, kRefTokens, {"mlp", "quick"}, ref_label);
  }
  for (const char* word : {"linear", "fused_gelu_residual"}) {
    add_mlp(r, true, variant(word), DType::bf16, kRefD, kRefFf, kRefTokens, {"mlp", "quick"}, ref_label);
  }
  add_shape(r, kRefD, kRefFf, kRefTokens, {"mlp"}, ref_label, true);
  // Transformer MLPs, d_ff = 4h.
  for (long h : {768L, 1600L, 2048L, 4096L, 8192L}) {
    for (long tokens : {2048L, 8192L, 32768L, 65536L}) {
      if (h == kRefD && 4 * h == kRefFf && tokens == kRefTokens) continue;  // the reference, above
      add_shape(r, h, 4 * h, tokens, {"mlp"}, fmt::format("MLP h={} d_ff={} T={}", h, 4 * h, tokens), false);
    }
  }
  // The gated MLP at the reference d and T and at h = 2048, 4096 (after their linear baselines).
  add_swiglu(r, kRefD, kRefTokens, {"mlp"}, true);
  for (long h : {2048L, 4096L}) {
    for (long tokens : {8192L, 32768L}) add_swiglu(r, h, tokens, {"mlp"}, false);
  }
}

}  // namespace wflops
