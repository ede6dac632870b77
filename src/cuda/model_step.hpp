// The whole decoder-only language-model training step (the model_step family, docs/model.md) as a
// Workload for the harness: forward, backward and AdamW in mixed precision (fp32 master weights and
// gradients, bf16 or fp16 compute), for GPT-2 and Llama (docs/model.md), in two implementations
// side by side:
//  - eager: what an eager framework runs, cuBLAS GEMMs and one of our kernels per elementwise
//    operation (bias, GELU or SiLU and multiply, residual, LayerNorm or RMSNorm, RoPE, repeat_kv,
//    softmax over the s x s scores, cross-entropy), in PyTorch eager's order;
//  - fused: cuBLASLt epilogues (GPT-2), the fused residual + LayerNorm / RMSNorm kernels, the
//    SwiGLU kernel (Llama), fused attention (cuDNN where present, else our FlashAttention-2;
//    describe() says which), the fused softmax + cross-entropy and one multi-tensor AdamW launch.
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
  // Tests only, never a benchmark: the fused step runs our FlashAttention-2 even where cuDNN's SDPA
  // builds, so that the fallback is exercised on machines with cuDNN.
  bool force_flash_attention = false;
};

// "" when the configuration can run, else why not (an unknown impl, a dtype other than bf16/fp16,
// an architecture not implemented yet, a shape that does not divide into heads).
std::string model_step_unsupported_reason(const ModelStepConfig& c);

std::unique_ptr<Workload> make_model_step_workload(const ModelStepConfig& c);

// The device memory the benchmark needs (its workload's device_bytes with one input set), known
// without a GPU (CUB's sort storage is then estimated); 0 when the configuration cannot run.
double model_step_memory_bytes(const ModelStepConfig& c);

namespace model_step_detail {
class StepBase;
}

// The step for tests (tests/gpu/test_model_step.cpp): one implementation's step at a shape, its
// parameters set from and its gradients read into the fp64 reference's structures
// (src/reference/model_reference.hpp, the same layout): the Gpt2 ones for a gpt2 shape, the Llama
// ones (the llama_ methods) for a llama shape. Every call synchronises.
class ModelStepRunner {
 public:
  // Allocates; std::runtime_error with model_step_unsupported_reason when the config cannot run.
  ModelStepRunner(const ModelStepConfig& c, cudaStream_t stream);
  ~ModelStepRunner();
  ModelStepRunner(const ModelStepRunner&) = delete;
  ModelStepRunner& operator=(const ModelStepRunner&) = delete;

  model_ref::Gpt2Config reference_config() const;         // a gpt2 shape's
  model_ref::LlamaConfig llama_reference_config() const;  // a llama shape's
  // The fp32 master weights (p rounded to fp32), their compute copies, zero AdamW moments.
  void set_parameters(const model_ref::Gpt2Params& p);
  void set_parameters(const model_ref::LlamaParams& p);
  enum class Tensors {
    masters,         // the fp32 master weights
    compute_copies,  // the compute-dtype copies the GEMMs multiply, decoded exactly: the reference's weights
    gradients,       // dloss/dparameter of the last run, fp32, the loss scale divided out
  };
  // Params: model_ref::Gpt2Params or model_ref::LlamaParams, the step's architecture's.
  template <class Params>
  Params tensors(Tensors which) const;

  // Forward and backward without the optimizer (the eager step casts the masters first, as each
  // of its steps does); returns the mean loss. tokens, targets: [batch, seq], each in [0, vocab).
  double run_forward_backward(const std::vector<long>& tokens, const std::vector<long>& targets);
  // A whole step: forward, backward and AdamW; returns the loss.
  double run_step(const std::vector<long>& tokens, const std::vector<long>& targets);
  std::string describe() const;

 private:
  void upload(const std::vector<long>& tokens, const std::vector<long>& targets);
  ModelStepConfig c_;
  std::unique_ptr<model_step_detail::StepBase> step_;
  DeviceBuffer tokens_;  // tokens, then targets: T ints each
  cudaStream_t stream_;
};

}  // namespace wflops
