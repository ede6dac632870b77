// The inside of the model_step workload (model_step.hpp), shared by its source files:
//   model_step_params.cpp  the parameter layout, the fp32 master / compute copy / gradient / AdamW
//                          buffers, initialisation, host transfers, the optimizer, the memory plan
//   model_step_eager.cpp   the eager forward and backward
//   model_step_fused.cpp   the fused forward and backward (and the attention engine choice)
//   model_step_check.cpp   the verification before timing
//   model_step.cpp         the Workload, the factory and the test-facing ModelStepRunner
// Internal: nothing outside these files includes it.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attention/attention_dims.cuh"
#include "cuda/device_buffer.hpp"
#include "cuda/harness.hpp"
#include "cuda/mlp_gemm.hpp"
#include "cuda/model_step.hpp"
#include "elementwise/adamw.cuh"
#include "elementwise/adamw_multi.cuh"
#include "model/head_layout.cuh"
#include "reference/model_reference.hpp"

namespace wflops::cudnn {
class SdpaForward;
class SdpaBackward;
}  // namespace wflops::cudnn

namespace wflops::model_step_detail {

// One parameter tensor inside the flat parameter buffers (master, compute copy, gradient, m, v all
// share these offsets). Each tensor starts on a 64-element boundary (256 bytes in fp32, 128 in
// 16-bit), so every tensor of every buffer is 16-byte aligned for the vector paths of the kernels.
enum class TensorKind { matrix, bias, gain };  // matrices and embeddings; biases; norm gains

struct TensorSlot {
  std::string name;        // model_ref::named_tensors' name: "wte", "h0.w_qkv", "lnf_b"
  std::size_t offset = 0;  // elements into the buffers
  std::size_t count = 0;   // the tensor's elements (wte: V·d, its padding rows not included)
  std::size_t region = 0;  // elements reserved (wte: Vp·d, the rows V..Vp-1 zero)
  TensorKind kind = TensorKind::matrix;
  // AdamW weight decay on matrices and embeddings, not on biases or norms (GPT-2's recipe).
  bool decay() const { return kind == TensorKind::matrix; }
};

struct BlockSlots {
  std::size_t ln1_g, ln1_b, w_qkv, b_qkv, w_o, b_o, ln2_g, ln2_b, w_fc, b_fc, w_proj, b_proj;
};

// The sizes of a GPT-2 step and where each parameter lies, in model_ref::named_tensors order.
struct Gpt2Layout {
  explicit Gpt2Layout(const flops::ModelStepShape& m);
  long d, L, h, hd, s, b, V, Vp, ff, T;
  std::vector<TensorSlot> tensors;
  std::size_t wte = 0, wpe = 0, lnf_g = 0, lnf_b = 0;  // offsets
  std::vector<BlockSlots> blocks;
  std::size_t total = 0;  // elements of each flat buffer, padding included
  std::size_t td() const { return static_cast<std::size_t>(T) * d; }
  kernels::AttentionDims attention_dims() const;
  kernels::HeadLayout heads(std::size_t n) const;
  model_ref::Gpt2Config reference_config() const;
};

// The vocabulary padded to a multiple of 64 (50257 -> 50304), as GPT-2 implementations pad it for
// the LM head's GEMMs and the cross-entropy kernel's 16-byte vectors (docs/model-kernels.md).
long padded_vocab(long vocab);

enum class Impl { eager, fused };

// The device memory of one step by kind, so that device_bytes() and allocate() agree.
struct BufferSizes {
  std::size_t params = 0;       // fp32 master, gradient, AdamW m and v, and the compute copy
  std::size_t activations = 0;  // what every layer keeps for the backward (eager: P per layer too)
  std::size_t temps = 0;        // scratch reused by every layer, forward and backward
  std::size_t logits = 0;       // [T, V or Vp] in the compute dtype (dlogits in place); eager: fp32 too
  std::size_t workspaces = 0;   // LayerNorm and embedding backward, attention (cuDNN's or ours)
  std::size_t blas = 0;         // cuBLAS / cuBLASLt's shared workspace
  std::size_t total() const { return params + activations + temps + logits + workspaces + blas; }
};

// The per-layer cuBLASLt plans of the fused step (a plan holds its bias and aux pointers).
struct LayerPlans {
  LtGemm qkv;       // qkv = h W_qkv^T + b_qkv                        (BIAS)
  LtGemm out_proj;  // branch = y W_o^T + b_o                          (BIAS)
  LtGemm fc;        // a = gelu(c W_fc^T + b_fc), pre kept as aux      (GELU_AUX_BIAS)
  LtGemm proj;      // branch = a W_proj^T + b_proj                    (BIAS)
  LtGemm dfc;       // d4 = (ds W_proj) gelu'(pre), db_fc in 16 bits   (DGELU_BGRAD)
};

// One GPT-2 training step on the device: parameters, activations, eager or fused forward +
// backward, AdamW. Everything is enqueued on the caller's stream; nothing synchronises except
// allocate() and the host transfers (set/read parameters and gradients).
// (Not copyable: it owns its device buffers and plans.)
class Gpt2Step {
 public:
  Gpt2Step(const ModelStepConfig& c, Impl impl);
  ~Gpt2Step();

  const Gpt2Layout& layout() const { return lay_; }
  Impl impl() const { return impl_; }
  // The memory this step allocates (the attention engine's own workspace, known only once cuDNN's
  // plan is built, estimated as the larger of our FlashAttention-2's and cuDNN's scratch).
  BufferSizes sizes() const;
  void allocate(cudaStream_t stream);
  std::string describe() const;

  // ---- parameters ----
  // GPT-2's initialisation on the fp32 masters: matrices and embeddings uniform with standard
  // deviation `std` (fill_random's [-1, 1) scaled by std·√3), biases 0, norm gains 1, norm biases 0;
  // the padding rows of wte 0; compute copies written; moments zero, step count 0.
  void init_parameters(std::uint64_t seed, float std, cudaStream_t stream);
  void set_parameters(const model_ref::Gpt2Params& p, cudaStream_t stream);  // synchronises
  // Another step's masters (same shape), copied on the device, then compute copies written.
  void copy_parameters_from(const Gpt2Step& other, cudaStream_t stream);
  model_ref::Gpt2Params read_tensors(const float* device_fp32, double scale) const;  // synchronous
  model_ref::Gpt2Params master_parameters() const;
  model_ref::Gpt2Params compute_parameters() const;  // the compute copy, decoded
  model_ref::Gpt2Params gradients() const;           // unscaled (divided by the loss scale)

  // ---- the step ----
  // tokens and targets: T device ints each. The mean loss lands in loss_ (read_loss), the gradients
  // in grads().
  void forward_backward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks);
  void optimizer(cudaStream_t stream, PhaseMarks& marks);
  double read_loss(cudaStream_t stream) const;  // synchronises
  // Sets every gradient tensor and activation the step writes to NaN (verification).
  void poison(cudaStream_t stream);
  void reset_optimizer(cudaStream_t stream);  // zero moments, step count 0

  const float* grads() const { return grads_.as<float>(); }
  const float* master() const { return master_.as<float>(); }
  // The loss scale the gradients carry: 1 for bf16; for fp16 8·T, so that each logit's gradient
  // 8·(softmax − onehot) starts in fp16's normal range (see model_step_params.cpp).
  double grad_scale() const { return grad_scale_; }

 private:
  // model_step_params.cpp
  void write_copies(cudaStream_t stream);
  std::size_t attention_workspace_estimate() const;
  // The LM head's backward (its part of the tied wte's gradient, dz) and LN_f's, into ds; `vocab`
  // columns of the logits (V eager, Vp fused).
  void head_backward(long vocab, cudaStream_t stream, PhaseMarks& marks);
  // model_step_eager.cpp
  void eager_forward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks);
  void eager_backward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks);
  // model_step_fused.cpp
  void plan_fused();
  void choose_fused_attention();
  void fused_forward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks);
  void fused_backward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks);
  void fused_attention_forward(long l, cudaStream_t stream);
  void fused_attention_backward(long l, const void* d_o, void* dqkv_heads, cudaStream_t stream);

  // Pointers into the buffers.
  void* w(std::size_t offset) const;  // compute copy of a parameter
  float* g(std::size_t offset) const { return grads_.as<float>() + offset; }
  void* act(const DeviceBuffer& b, long layer, std::size_t elements_per_layer) const;
  void* stream_at(long l) const;  // s_l, the residual stream entering block l (s_L: before LN_f)
  std::size_t stat_stride() const;
  // LayerNorm statistics: LN1 of block l is norm 2l, LN2 norm 2l + 1, LN_f norm 2L.
  float* mean_at(long norm) const;
  float* rstd_at(long norm) const;
  // What block l keeps for its backward.
  struct LayerPtrs {
    void *s_in, *h, *q, *k, *v, *o, *y, *mid, *c, *pre, *a, *s_out;
    void* probs;  // eager: P [b·h·s, s]
    float* lse;   // fused: the attention's log-sum-exp [b·h·s]
  };
  LayerPtrs layer(long l) const;

  ModelStepConfig c_;
  Impl impl_;
  Gpt2Layout lay_;
  double grad_scale_ = 1;
  kernels::AdamW adamw_{};  // adamw.cuh's defaults: lr 1e-4, betas 0.9 and 0.95, eps 1e-8, decay 0.1
  int step_ = 0;
  long aux_ld_ = 0;     // the GELU pre-activation's row length (cuBLASLt's aux needs a multiple of 8)
  long logits_ld_ = 0;  // V (eager) or Vp (fused)

  DeviceBuffer master_, copy_, grads_, m_, v_;
  // Kept per layer for the backward (L slices each): h = LN1 out, q/k/v heads, o heads, y = merged
  // attention output, mid = residual stream after attention, c = LN2 out, pre = fc pre-activation,
  // a = GELU out; streams s_0..s_L; mean / rstd of LN1, LN2 (per layer) and LN_f; eager: P per
  // layer; fused: the attention's log-sum-exp per layer.
  DeviceBuffer streams_, h_, qkvh_, o_, y_, mid_, c_buf_, pre_, a_, z_, mean_, rstd_, probs_, lse_;
  // Scratch shared by the layers: forward qkv [T, 3d] and branch output [T, d]; backward ds (the
  // residual stream's gradient), dtmp [T, d], d4 [T, ff], dqkv [T, 3d], head-major dO and dq/dk/dv;
  // eager's score matrix, its lse and row dots; fused's bias gradient of the fc layer.
  DeviceBuffer qkv_, branch_, ds_, dtmp_, d4_, dqkv_, dheads_, dout_heads_, scores_, attn_lse_, row_dot_, db_fc_;
  DeviceBuffer logits_, logits32_, losses_, loss_;
  DeviceBuffer ln_ws_, emb_ws_, attn_ws_;
  std::size_t emb_ws_bytes_ = 0;

  // fused: the cuBLASLt plans per layer, the AdamW table, the attention engine
  std::vector<std::unique_ptr<LayerPlans>> plans_;
  kernels::AdamWMultiTable adamw_table_;
  std::unique_ptr<cudnn::SdpaForward> sdpa_fwd_;
  std::unique_ptr<cudnn::SdpaBackward> sdpa_bwd_;
  std::string attention_engine_;  // what describe() says
};

// ---- model_step_check.cpp ----
// GPT-2's initialisation scale of matrices and embeddings (the published model's 0.02).
inline constexpr float kInitStd = 0.02f;
// `count` ids uniform in [0, vocab) from `seed`, copied to device memory on `stream` (waited for).
void upload_random_ids(std::uint64_t seed, long vocab, std::size_t count, int* device, cudaStream_t stream);
// The check before timing, at the step's own shape: fresh GPT-2 initialisation and random tokens;
// the loss finite and near its value at initialisation; every gradient finite (poisoned first);
// the other implementation run on the same weights and tokens, its loss and sampled gradients
// matching; then AdamW keeps the masters finite. tokens / targets: input set 0 of the workload.
Verification verify_step(Gpt2Step& step, const ModelStepConfig& c, int* tokens, int* targets, cudaStream_t stream);

}  // namespace wflops::model_step_detail
