// The whole decoder-only language-model training step (the model_step family, docs/model.md) as a
// Workload for the harness: forward, backward and AdamW in mixed precision (fp32 master weights and
// gradients, bf16 or fp16 compute), in two implementations side by side:
//  - eager: what an eager framework runs, cuBLAS GEMMs and one of our kernels per elementwise
//    operation (bias, GELU, residual, LayerNorm, softmax over the s x s scores, cross-entropy), in
//    PyTorch eager's order;
//  - fused: cuBLASLt epilogues, the fused residual + LayerNorm kernels, fused attention (cuDNN where
//    present, else our FlashAttention-2; describe() says which), the fused softmax + cross-entropy
//    and one multi-tensor AdamW launch.
// The step's phases (src/model/model_phases.hpp) are marked for the harness's time split. The FLOP
// model is src/model/flops_model.hpp; the fp64 reference src/reference/model_reference.hpp.
#pragma once
#include <memory>
#include <string>

#include "cuda/harness.hpp"
#include "dtype.hpp"
#include "model/flops_model.hpp"

namespace wflops {

struct ModelStepConfig {
  std::string impl;           // "eager" or "fused"
  DType dtype = DType::bf16;  // compute dtype: bf16 or fp16, both with fp32 master weights
  flops::ModelStepShape shape;
};

// "" when the configuration can run, else why not (an unknown impl, a dtype other than bf16/fp16,
// an architecture not implemented yet, a shape that does not divide into heads).
std::string model_step_unsupported_reason(const ModelStepConfig& c);

std::unique_ptr<Workload> make_model_step_workload(const ModelStepConfig& c);

}  // namespace wflops
