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
#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <vector>

#include "cuda/device_buffer.hpp"
#include "cuda/harness.hpp"
#include "dtype.hpp"
#include "model/flops_model.hpp"
#include "reference/model_reference.hpp"

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

// The device memory the benchmark needs (its workload's device_bytes with one input set), known
// without a GPU (CUB's sort storage is then estimated); 0 when the configuration cannot run.
double model_step_memory_bytes(const ModelStepConfig& c);

namespace model_step_detail {
class Gpt2Step;
}

// The step for tests (tests/gpu/test_model_step.cpp): one implementation's GPT-2 step at a shape,
// its parameters set from and its gradients read into the fp64 reference's structures
// (src/reference/model_reference.hpp, the same layout). Every call synchronises.
class ModelStepRunner {
 public:
  // Allocates; std::runtime_error with model_step_unsupported_reason when the config cannot run.
  ModelStepRunner(const ModelStepConfig& c, cudaStream_t stream);
  ~ModelStepRunner();
  ModelStepRunner(const ModelStepRunner&) = delete;
  ModelStepRunner& operator=(const ModelStepRunner&) = delete;

  model_ref::Gpt2Config reference_config() const;
  // The fp32 master weights (p rounded to fp32), their compute copies, zero AdamW moments.
  void set_parameters(const model_ref::Gpt2Params& p);
  model_ref::Gpt2Params master_parameters() const;
  // The compute-dtype copies the GEMMs multiply, decoded exactly: the reference's weights.
  model_ref::Gpt2Params compute_parameters() const;
  // Forward and backward without the optimizer (the eager step casts the masters first, as each
  // of its steps does); returns the mean loss. tokens, targets: [batch, seq], each in [0, vocab).
  double run_forward_backward(const std::vector<long>& tokens, const std::vector<long>& targets);
  // dloss/dparameter of the last run, fp32, the loss scale divided out.
  model_ref::Gpt2Params gradients() const;
  // A whole step: forward, backward and AdamW; returns the loss.
  double run_step(const std::vector<long>& tokens, const std::vector<long>& targets);
  std::string describe() const;

 private:
  void upload(const std::vector<long>& tokens, const std::vector<long>& targets);
  std::unique_ptr<model_step_detail::Gpt2Step> step_;
  DeviceBuffer tokens_;  // tokens, then targets: T ints each
  cudaStream_t stream_;
};

}  // namespace wflops
