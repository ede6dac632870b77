// The model_step Workload (model_step.hpp): one GPT-2 training step a launch, eager or fused
// (model_step_impl.hpp holds the step itself), and the test-facing ModelStepRunner.
#include "cuda/model_step.hpp"

#include <fmt/core.h>

#include <climits>
#include <cmath>
#include <stdexcept>

#include "attention/flash_attention_fwd.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/cudnn_sdpa.hpp"
#include "cuda/model_step_impl.hpp"
#include "cuda/rotated_inputs.hpp"
#include "model/layernorm_residual.cuh"

namespace wflops {

namespace {

using model_step_detail::Gpt2Step;
using model_step_detail::Impl;

Impl impl_of(const ModelStepConfig& c) { return c.impl == "eager" ? Impl::eager : Impl::fused; }

bool whole(double x) { return x >= 1 && x == std::floor(x) && x <= static_cast<double>(INT_MAX); }

class ModelStepWorkload final : public Workload {
 public:
  explicit ModelStepWorkload(const ModelStepConfig& c) : c_(c), step_(c, impl_of(c)) {}

  // The token ids and targets: the weights and activations a step reads are far larger than L2
  // whatever the rotation, so the harness's sets only vary the tokens.
  double input_bytes() const override { return static_cast<double>(set_bytes()); }

  // The step's buffers, the token sets, and the other implementation's step, which verify() runs
  // beside this one on the same weights (it is freed before timing, but must fit while it runs).
  double device_bytes(int sets) const override {
    const Gpt2Step peer(c_, step_.impl() == Impl::eager ? Impl::fused : Impl::eager);
    return static_cast<double>(step_.sizes().total()) + static_cast<double>(peer.sizes().total() - peer.sizes().blas) +
           static_cast<double>(sets) * static_cast<double>(set_bytes());
  }

  void allocate(int sets, cudaStream_t stream) override {
    const std::string why = model_step_unsupported_reason(c_);
    if (!why.empty()) throw std::runtime_error(why);
    step_.allocate(stream);
    tokens_ = DeviceBuffer(static_cast<std::size_t>(sets) * set_bytes());
    const long V = step_.layout().V;
    const std::size_t T = static_cast<std::size_t>(step_.layout().T);
    for (int s = 0; s < sets; ++s) {
      model_step_detail::upload_random_ids(fresh_seed(), V, T, tokens(s), stream);
      model_step_detail::upload_random_ids(fresh_seed(), V, T, targets(s), stream);
    }
    step_.init_parameters(fresh_seed(), model_step_detail::kInitStd, stream);
  }

  Verification verify(cudaStream_t stream) override {
    return model_step_detail::verify_step(step_, c_, tokens(0), targets(0), stream);
  }

  void launch(cudaStream_t stream, int set) override {
    PhaseMarks none;
    launch_marked(stream, set, none);
  }

  bool has_phases() const override { return true; }

  void launch_marked(cudaStream_t stream, int set, PhaseMarks& marks) override {
    step_.forward_backward(tokens(set), targets(set), stream, marks);
    step_.optimizer(stream, marks);
  }

  std::string describe() const override { return step_.describe(); }

 private:
  std::size_t set_bytes() const { return align_up(2 * static_cast<std::size_t>(step_.layout().T) * sizeof(int)); }
  int* tokens(int set) const {
    return reinterpret_cast<int*>(tokens_.as<char>() + static_cast<std::size_t>(set) * set_bytes());
  }
  int* targets(int set) const { return tokens(set) + step_.layout().T; }

  ModelStepConfig c_;
  Gpt2Step step_;
  DeviceBuffer tokens_;  // per set: T token ids, then T targets
};

}  // namespace

std::string model_step_unsupported_reason(const ModelStepConfig& c) {
  if (c.impl != "eager" && c.impl != "fused") {
    return fmt::format("unknown model_step implementation '{}' (eager or fused)", c.impl);
  }
  if (c.dtype != DType::bf16 && c.dtype != DType::fp16) {
    return fmt::format("the model step runs in bf16 or fp16 (with fp32 master weights), not {}", dtype_name(c.dtype));
  }
  const flops::ModelStepShape& m = c.shape;
  if (m.arch == flops::ModelArch::llama) return "llama is not implemented yet";
  if (!whole(m.hidden) || !whole(m.layers) || !whole(m.heads) || !whole(m.seq) || !whole(m.batch) || !whole(m.vocab)) {
    return "d, L, h, s, b and V must be positive whole numbers";
  }
  const long d = static_cast<long>(m.hidden), h = static_cast<long>(m.heads);
  if (d % h != 0) return fmt::format("d ({}) does not divide into {} heads", d, h);
  if (m.kv_heads != 0 && m.kv_heads != m.heads) return "gpt2 has as many K/V heads as heads";
  if (m.ffn != 0 && m.ffn != 4 * m.hidden) return fmt::format("gpt2's MLP is 4d wide ({}), not {}", 4 * d, m.ffn);
  if (m.untied) return "gpt2 ties its LM head to the token embedding";
  // 16-byte vectors of the LayerNorm, head-layout and cross-entropy kernels, and cuBLASLt's
  // epilogues (their aux and bias rows), want d a multiple of 8.
  if (d % 8 != 0) return fmt::format("d ({}) must be a multiple of 8", d);
  if (static_cast<std::size_t>(d) > kernels::kLayerNormMaxDim) {
    return fmt::format("d ({}) is above the LayerNorm kernels' {}", d, kernels::kLayerNormMaxDim);
  }
  const double tokens = m.batch * m.seq;
  if (tokens > INT_MAX || 4 * m.hidden > INT_MAX ||
      model_step_detail::padded_vocab(static_cast<long>(m.vocab)) > INT_MAX) {
    return "T = b·s, 4d and V must fit cuBLAS's 32-bit dimensions";
  }
  if (c.impl == "fused") {
    kernels::AttentionDims dims{static_cast<long>(m.batch), h, static_cast<long>(m.seq), d / h, true};
    const std::string flash = kernels::flash_attention_unsupported_reason(c.dtype, dims);
    const std::string cudnn_why = cudnn::sdpa_unsupported_reason(c.dtype, dims);
    if (!flash.empty() && !cudnn_why.empty()) {
      return fmt::format("no fused attention for this shape: {}; {}", cudnn_why, flash);
    }
  }
  return "";
}

std::unique_ptr<Workload> make_model_step_workload(const ModelStepConfig& c) {
  return std::make_unique<ModelStepWorkload>(c);
}

double model_step_memory_bytes(const ModelStepConfig& c) {
  if (!model_step_unsupported_reason(c).empty()) return 0;
  return ModelStepWorkload(c).device_bytes(1);
}

// ---- ModelStepRunner -------------------------------------------------------------------------

ModelStepRunner::ModelStepRunner(const ModelStepConfig& c, cudaStream_t stream) : stream_(stream) {
  const std::string why = model_step_unsupported_reason(c);
  if (!why.empty()) throw std::runtime_error(why);
  step_ = std::make_unique<Gpt2Step>(c, impl_of(c));
  step_->allocate(stream);
  tokens_ = DeviceBuffer(2 * static_cast<std::size_t>(step_->layout().T) * sizeof(int));
}

ModelStepRunner::~ModelStepRunner() = default;

model_ref::Gpt2Config ModelStepRunner::reference_config() const { return step_->layout().reference_config(); }

void ModelStepRunner::set_parameters(const model_ref::Gpt2Params& p) { step_->set_parameters(p, stream_); }

model_ref::Gpt2Params ModelStepRunner::master_parameters() const { return step_->master_parameters(); }

model_ref::Gpt2Params ModelStepRunner::compute_parameters() const { return step_->compute_parameters(); }

model_ref::Gpt2Params ModelStepRunner::gradients() const { return step_->gradients(); }

std::string ModelStepRunner::describe() const { return step_->describe(); }

void ModelStepRunner::upload(const std::vector<long>& tokens, const std::vector<long>& targets) {
  const model_step_detail::Gpt2Layout& lay = step_->layout();
  const std::size_t T = static_cast<std::size_t>(lay.T);
  if (tokens.size() != T || targets.size() != T) {
    throw std::invalid_argument(
        fmt::format("{} tokens and {} targets for a step of {}", tokens.size(), targets.size(), T));
  }
  std::vector<int> ids(2 * T);
  for (std::size_t i = 0; i < T; ++i) {
    for (long id : {tokens[i], targets[i]}) {
      if (id < 0 || id >= lay.V) throw std::invalid_argument(fmt::format("id {} outside [0, {})", id, lay.V));
    }
    ids[i] = static_cast<int>(tokens[i]);
    ids[T + i] = static_cast<int>(targets[i]);
  }
  CUDA_CHECK(cudaMemcpyAsync(tokens_.get(), ids.data(), ids.size() * sizeof(int), cudaMemcpyHostToDevice, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

double ModelStepRunner::run_forward_backward(const std::vector<long>& tokens, const std::vector<long>& targets) {
  upload(tokens, targets);
  PhaseMarks none;
  const int* ids = tokens_.as<int>();
  step_->forward_backward(ids, ids + step_->layout().T, stream_, none);
  return step_->read_loss(stream_);
}

double ModelStepRunner::run_step(const std::vector<long>& tokens, const std::vector<long>& targets) {
  upload(tokens, targets);
  PhaseMarks none;
  const int* ids = tokens_.as<int>();
  step_->forward_backward(ids, ids + step_->layout().T, stream_, none);
  step_->optimizer(stream_, none);
  return step_->read_loss(stream_);
}

}  // namespace wflops
