// MLP training steps (d -> d_ff -> d on T tokens) and their forward passes, as Workloads for the
// harness: the linear MLP, mixed precision (fp32 master weights, cast, AdamW), and the activation +
// bias (+ residual) MLP unfused (cuBLAS GEMMs with our elementwise kernels between them) and fused
// (cuBLASLt epilogues), and the gated MLP (SwiGLU, one GEMM for gate and up) with our fused SwiGLU
// kernel or eager's separate passes. The reference and the layout are in src/reference/mlp_reference.hpp; the
// GEMMs' row-major to column-major mapping in src/cuda/mlp_gemm.hpp.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/elementwise_common.cuh"
#include "cuda/harness.hpp"
#include "dtype.hpp"

namespace wflops {

// One implementation word of the benchmark names (mlp_step/<word>/...), decoded.
struct MlpVariant {
  std::string word;    // "linear", "mixed_linear", "unfused_gelu_residual", "fused_relu", ...
  bool mixed = false;  // fp32 master weights cast every step, fp32 gradients, AdamW
  bool fused = false;  // cuBLASLt epilogues instead of our elementwise kernels
  kernels::Activation act = kernels::Activation::none;
  bool bias = false;      // nn.Linear biases (every variant with an activation has them)
  bool residual = false;  // y = MLP(x) + x
  // SwiGLU: W1 [2 d_ff, d] stacks gate and up (one GEMM), a = silu(gate) * up, no biases
  // (kernels/elementwise/swiglu.cuh). fused stays false: it means cuBLASLt epilogues, which have no SwiGLU.
  bool gated = false;
  bool gate_fused = false;  // gated: our one-pass SwiGLU kernels (else eager's silu, multiply passes)
};

// Every variant the benchmarks register, in registration order (linear first).
const std::vector<MlpVariant>& mlp_variants();
std::optional<MlpVariant> mlp_variant(const std::string& word);

struct MlpConfig {
  MlpVariant variant;
  DType dtype = DType::bf16;  // of the GEMMs and activations (fp16 or bf16)
  long d = 0, d_ff = 0, tokens = 0;
  bool forward_only = false;  // mlp_fwd: the forward of the step (with what the backward would keep)
};

// "" when the configuration can run, else why not (checked again by the workload's allocate()).
std::string mlp_unsupported_reason(const MlpConfig& c);

std::unique_ptr<Workload> make_mlp_workload(const MlpConfig& c);

}  // namespace wflops
