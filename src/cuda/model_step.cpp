// The model_step Workload (model_step.hpp): one GPT-2 or Llama training step a launch, eager or
// fused (model_step_impl.hpp holds the steps themselves), and the test-facing ModelStepRunner.
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
#include "model/rmsnorm_residual.cuh"

namespace wflops {

namespace {

using model_step_detail::Impl;
using model_step_detail::StepBase;

Impl impl_of(const ModelStepConfig& c) { return c.impl == "eager" ? Impl::eager : Impl::fused; }

bool whole(double x) { return x >= 1 && x == std::floor(x) && x <= static_cast<double>(INT_MAX); }

class ModelStepWorkload final : public Workload {
 public:
  explicit ModelStepWorkload(const ModelStepConfig& c) : c_(c), step_(model_step_detail::make_step(c, impl_of(c))) {}

  // The token ids and targets: the weights and activations a step reads are far larger than L2
  // whatever the rotation, so the harness's sets only vary the tokens.
  double input_bytes() const override { return static_cast<double>(set_bytes()); }

  // The step's buffers, the token sets, and the other implementation's step, which verify() runs
  // beside this one on the same weights (it is freed before timing, but must fit while it runs): its
  // own gradients and activations; it shares this step's masters, moments and compute copy, and
  // cuBLAS's workspace.
  double device_bytes(int sets) const override {
    const std::unique_ptr<StepBase> peer = model_step_detail::make_step(c_, other_impl());
    const model_step_detail::BufferSizes p = peer->sizes();
    return static_cast<double>(step_->sizes().total()) + static_cast<double>(p.total() - p.params - p.blas) +
           static_cast<double>(sets) * static_cast<double>(set_bytes());
  }

  void allocate(int sets, cudaStream_t stream) override {
    const std::string why = model_step_unsupported_reason(c_);
    if (!why.empty()) throw std::runtime_error(why);
    step_->allocate(stream);
    tokens_ = DeviceBuffer(static_cast<std::size_t>(sets) * set_bytes());
    const long V = step_->shape().V;
    const std::size_t T = static_cast<std::size_t>(step_->shape().T);
    for (int s = 0; s < sets; ++s) {
      model_step_detail::upload_random_ids(fresh_seed(), V, T, tokens(s), stream);
      model_step_detail::upload_random_ids(fresh_seed(), V, T, targets(s), stream);
    }
    step_->init_parameters(fresh_seed(), model_step_detail::kInitStd, stream);
  }

  Verification verify(cudaStream_t stream) override {
    return model_step_detail::verify_step(*step_, c_, tokens(0), targets(0), stream);
  }

  void launch(cudaStream_t stream, int set) override {
    PhaseMarks none;
    launch_marked(stream, set, none);
  }

  bool has_phases() const override { return true; }

  void launch_marked(cudaStream_t stream, int set, PhaseMarks& marks) override {
    step_->forward_backward(tokens(set), targets(set), stream, marks);
    step_->optimizer(stream, marks);
  }

  std::string describe() const override { return step_->describe(); }

 private:
  Impl other_impl() const { return step_->impl() == Impl::eager ? Impl::fused : Impl::eager; }
  std::size_t set_bytes() const { return align_up(2 * static_cast<std::size_t>(step_->shape().T) * sizeof(int)); }
  int* tokens(int set) const {
    return reinterpret_cast<int*>(tokens_.as<char>() + static_cast<std::size_t>(set) * set_bytes());
  }
  int* targets(int set) const { return tokens(set) + step_->shape().T; }

  ModelStepConfig c_;
  std::unique_ptr<StepBase> step_;
  DeviceBuffer tokens_;  // per set: T token ids, then T targets
};

}  // namespace

namespace {

// The architecture's own rules; "" when its blocks run the shape.
std::string gpt2_unsupported_reason(const flops::ModelStepShape& m) {
  const long d = static_cast<long>(m.hidden);
  if (m.kv_heads != 0 && m.kv_heads != m.heads) return "gpt2 has as many K/V heads as heads";
  if (m.ffn != 0 && m.ffn != 4 * m.hidden) return fmt::format("gpt2's MLP is 4d wide ({}), not {}", 4 * d, m.ffn);
  if (m.untied) return "gpt2 ties its LM head to the token embedding";
  if (static_cast<std::size_t>(d) > kernels::kLayerNormMaxDim) {
    return fmt::format("d ({}) is above the LayerNorm kernels' {}", d, kernels::kLayerNormMaxDim);
  }
  return "";
}

std::string llama_unsupported_reason(const flops::ModelStepShape& m) {
  if (!whole(m.kv_heads) || !whole(m.ffn)) return "llama's kvh and ff must be positive whole numbers";
  const long d = static_cast<long>(m.hidden), h = static_cast<long>(m.heads), kvh = static_cast<long>(m.kv_heads);
  const long ff = static_cast<long>(m.ffn);
  if (h % kvh != 0) return fmt::format("{} K/V heads do not divide {} query heads", kvh, h);
  // RoPE pairs the halves of a head, and the head-layout copies move 16-byte vectors: 8-element
  // multiples.
  if ((d / h) % 8 != 0) return fmt::format("the head size d/h ({}) must be a multiple of 8", d / h);
  if (ff % 8 != 0) return fmt::format("ff ({}) must be a multiple of 8", ff);
  // w_up must follow w_gate without padding, and tensors start at 128-element boundaries.
  if ((d * ff) % 128 != 0) return fmt::format("d x ff ({} x {}) must be a multiple of 128 elements", d, ff);
  if (!m.untied) return "llama's LM head is untied from the token embedding";
  if (static_cast<std::size_t>(d) > kernels::kRmsNormMaxDim) {
    return fmt::format("d ({}) is above the RMSNorm kernels' {}", d, kernels::kRmsNormMaxDim);
  }
  if (2 * m.ffn > INT_MAX) return "2 ff must fit cuBLAS's 32-bit dimensions";
  return "";
}

}  // namespace

std::string model_step_unsupported_reason(const ModelStepConfig& c) {
  if (c.impl != "eager" && c.impl != "fused") {
    return fmt::format("unknown model_step implementation '{}' (eager or fused)", c.impl);
  }
  if (c.dtype != DType::bf16 && c.dtype != DType::fp16) {
    return fmt::format("the model step runs in bf16 or fp16 (with fp32 master weights), not {}", dtype_name(c.dtype));
  }
  const flops::ModelStepShape& m = c.shape;
  if (!whole(m.hidden) || !whole(m.layers) || !whole(m.heads) || !whole(m.seq) || !whole(m.batch) || !whole(m.vocab)) {
    return "d, L, h, s, b and V must be positive whole numbers";
  }
  const long d = static_cast<long>(m.hidden), h = static_cast<long>(m.heads);
  if (d % h != 0) return fmt::format("d ({}) does not divide into {} heads", d, h);
  const std::string arch = m.arch == flops::ModelArch::llama ? llama_unsupported_reason(m) : gpt2_unsupported_reason(m);
  if (!arch.empty()) return arch;
  // 16-byte vectors of the norm, head-layout and cross-entropy kernels, and cuBLASLt's epilogues
  // (their aux and bias rows), want d a multiple of 8.
  if (d % 8 != 0) return fmt::format("d ({}) must be a multiple of 8", d);
  const double tokens = m.batch * m.seq;
  if (tokens > INT_MAX || 4 * m.hidden > INT_MAX ||
      model_step_detail::padded_vocab(static_cast<long>(m.vocab)) > INT_MAX) {
    return "T = b·s, 4d and V must fit cuBLAS's 32-bit dimensions";
  }
  if (c.impl == "fused") {
    // Attention over h heads in both architectures (llama's K/V expanded to them).
    kernels::AttentionDims dims{static_cast<long>(m.batch), h, static_cast<long>(m.seq), d / h, true};
    const std::string flash = kernels::flash_attention_unsupported_reason(c.dtype, dims);
    const std::string cudnn_why =
        c.force_flash_attention ? std::string("forced off") : cudnn::sdpa_unsupported_reason(c.dtype, dims);
    if (!flash.empty() && !cudnn_why.empty()) {
      return fmt::format("no fused attention for this shape: {}; {}", cudnn_why, flash);
    }
  }
  return "";
}

namespace model_step_detail {

std::unique_ptr<StepBase> make_step(const ModelStepConfig& c, Impl impl) {
  if (c.shape.arch == flops::ModelArch::llama) return std::make_unique<LlamaStep>(c, impl);
  return std::make_unique<Gpt2Step>(c, impl);
}

}  // namespace model_step_detail

std::unique_ptr<Workload> make_model_step_workload(const ModelStepConfig& c) {
  return std::make_unique<ModelStepWorkload>(c);
}

double model_step_memory_bytes(const ModelStepConfig& c) {
  if (!model_step_unsupported_reason(c).empty()) return 0;
  return ModelStepWorkload(c).device_bytes(1);
}

// ---- ModelStepRunner -------------------------------------------------------------------------

ModelStepRunner::ModelStepRunner(const ModelStepConfig& c, cudaStream_t stream) : c_(c), stream_(stream) {
  const std::string why = model_step_unsupported_reason(c);
  if (!why.empty()) throw std::runtime_error(why);
  step_ = model_step_detail::make_step(c, impl_of(c));
  step_->allocate(stream);
  tokens_ = DeviceBuffer(2 * static_cast<std::size_t>(step_->shape().T) * sizeof(int));
}

ModelStepRunner::~ModelStepRunner() = default;

model_ref::Gpt2Config ModelStepRunner::reference_config() const {
  return model_step_detail::Gpt2Layout(c_.shape).reference_config();
}

model_ref::LlamaConfig ModelStepRunner::llama_reference_config() const {
  return model_step_detail::LlamaLayout(c_.shape).reference_config();
}

void ModelStepRunner::set_parameters(const model_ref::Gpt2Params& p) {
  step_->set_tensors(model_ref::named_tensors(p), stream_);
}

void ModelStepRunner::set_parameters(const model_ref::LlamaParams& p) {
  step_->set_tensors(model_ref::named_tensors(p), stream_);
}

namespace {

model_ref::Gpt2Params zero_params(const ModelStepRunner& r, const model_ref::Gpt2Params*) {
  return model_ref::gpt2_zero_params(r.reference_config());
}

model_ref::LlamaParams zero_params(const ModelStepRunner& r, const model_ref::LlamaParams*) {
  return model_ref::llama_zero_params(r.llama_reference_config());
}

}  // namespace

template <class Params>
Params ModelStepRunner::tensors(Tensors which) const {
  Params p = zero_params(*this, static_cast<const Params*>(nullptr));
  const StepBase::Named named = model_ref::named_tensors(p);
  switch (which) {
    case Tensors::masters: step_->read_masters(named); break;
    case Tensors::compute_copies: step_->read_compute_copies(named); break;
    case Tensors::gradients: step_->read_gradients(named); break;
  }
  return p;
}

template model_ref::Gpt2Params ModelStepRunner::tensors(Tensors) const;
template model_ref::LlamaParams ModelStepRunner::tensors(Tensors) const;

std::string ModelStepRunner::describe() const { return step_->describe(); }

void ModelStepRunner::upload(const std::vector<long>& tokens, const std::vector<long>& targets) {
  const model_step_detail::StepLayout& lay = step_->shape();
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
  step_->forward_backward(ids, ids + step_->shape().T, stream_, none);
  return step_->read_loss(stream_);
}

double ModelStepRunner::run_step(const std::vector<long>& tokens, const std::vector<long>& targets) {
  run_forward_backward(tokens, targets);
  PhaseMarks none;
  step_->optimizer(stream_, none);
  return step_->read_loss(stream_);
}

}  // namespace wflops
