// The inside of the model_step workload (model_step.hpp), shared by its source files:
//   model_step_params.cpp  StepBase: the fp32 master / compute copy / gradient / AdamW buffers,
//                          initialisation, host transfers, the LM head and loss, the optimizer;
//                          GPT-2's parameter layout and memory plan
//   model_step_eager.cpp   the eager GPT-2 forward and backward
//   model_step_fused.cpp   the fused GPT-2 forward and backward, and the fused attention engine
//   model_step_llama.cpp   the Llama step, eager and fused
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
#include "cuda/rotated_inputs.hpp"
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
// share these offsets). Each tensor starts on a 128-element boundary (256 bytes in 16-bit, 512 in
// fp32): the alignment cuBLASLt's heuristic assumes of its operands by default, and more than the
// 16 bytes the vector paths of the kernels need.
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

// The flat buffers' table of tensors, built tensor by tensor in model_ref::named_tensors order.
struct TensorTable {
  std::vector<TensorSlot> tensors;
  std::size_t total = 0;  // elements of each flat buffer, padding included
  // Appends a tensor of `count` elements in `region` (0: count) at the next 128-element boundary;
  // returns its offset.
  std::size_t add(std::string name, std::size_t count, TensorKind kind, std::size_t region = 0);
};

// The sizes every architecture's step has, and its tensor table.
struct StepLayout : TensorTable {
  explicit StepLayout(const flops::ModelStepShape& m);
  // kvh K/V heads of hd (gpt2: kvh = h), kv = kvh·hd; ff the MLP's hidden size (gpt2: 4d).
  long d, L, h, kvh, hd, kv, s, b, V, Vp, ff, T;
  std::size_t td() const { return static_cast<std::size_t>(T) * d; }
  // Attention over h heads: K and V as many heads as Q (llama's expanded by repeat_kv).
  kernels::AttentionDims attention_dims() const;
  kernels::HeadLayout heads(std::size_t n, long head_count) const;  // n tensors of head_count heads
  kernels::HeadLayout heads(std::size_t n) const { return heads(n, h); }
};

// The vocabulary padded to a multiple of 64 (50257 -> 50304), as GPT-2 implementations pad it for
// the LM head's GEMMs and the cross-entropy kernel's 16-byte vectors (docs/model-kernels.md).
long padded_vocab(long vocab);

// Bytes of one slice of `elements` elements of `bytes` each, padded to the device alignment.
inline std::size_t slice_bytes(std::size_t elements, std::size_t bytes) { return align_up(elements * bytes); }

enum class Impl { eager, fused };

// The device memory of one step by kind, so that device_bytes() and allocate() agree.
struct BufferSizes {
  std::size_t params = 0;       // fp32 master, AdamW m and v, and the compute copy (a peer shares them)
  std::size_t grads = 0;        // the fp32 gradients
  std::size_t activations = 0;  // what every layer keeps for the backward (eager: P per layer too)
  std::size_t temps = 0;        // scratch reused by every layer, forward and backward
  std::size_t logits = 0;       // [T, V or Vp] in the compute dtype (dlogits in place); eager: fp32 too
  std::size_t workspaces = 0;   // norm and embedding backward, attention (cuDNN's or ours)
  std::size_t blas = 0;         // cuBLAS / cuBLASLt's shared workspace
  std::size_t total() const { return params + grads + activations + temps + logits + workspaces + blas; }
};

// The fused steps' attention core over [b, h, s, hd] heads: cuDNN's SDPA where it builds (unless
// the configuration forces ours), else our FlashAttention-2; describe() says which and why.
class FusedAttention {
 public:
  FusedAttention();
  ~FusedAttention();
  // Builds the engine and allocates its workspace; std::runtime_error when neither runs the shape.
  void choose(DType dtype, const kernels::AttentionDims& dims, bool force_flash);
  // The workspace before choose(): the larger of our FlashAttention-2's and cuDNN's scratch.
  static std::size_t workspace_estimate(const kernels::AttentionDims& dims);
  void forward(const void* q, const void* k, const void* v, void* o, float* lse, cudaStream_t stream) const;
  // dqkv: dq, dk and dv head-major one after another.
  void backward(const void* q, const void* k, const void* v, const void* o, const float* lse, const void* d_o,
                void* dqkv, cudaStream_t stream) const;
  const std::string& describe() const { return engine_; }

 private:
  DType dtype_ = DType::bf16;
  kernels::AttentionDims dims_{};
  std::unique_ptr<cudnn::SdpaForward> fwd_;
  std::unique_ptr<cudnn::SdpaBackward> bwd_;
  DeviceBuffer workspace_;
  std::string engine_;
};

// What every architecture's step shares: the flat parameter buffers (fp32 masters, gradients and
// AdamW moments, the compute copy), their initialisation and host transfers, the LM head with its
// loss, AdamW, the embedding's workspace and the fused attention engine. Each architecture
// (Gpt2Step, LlamaStep) adds its blocks' own activations and its forward and backward. The
// buffers of a pre-norm block that both architectures keep are here too. Everything is
// enqueued on the caller's stream; nothing synchronises except allocate() and the host transfers.
// (Not copyable: it owns its device buffers and plans.)
class StepBase {
 public:
  StepBase(const ModelStepConfig& c, Impl impl);
  virtual ~StepBase();
  StepBase(const StepBase&) = delete;
  StepBase& operator=(const StepBase&) = delete;

  virtual const StepLayout& shape() const = 0;
  Impl impl() const { return impl_; }
  // The memory this step allocates (the attention engine's own workspace, known only once cuDNN's
  // plan is built, estimated as FusedAttention::workspace_estimate).
  virtual BufferSizes sizes() const = 0;
  // Allocates everything; with `share`, another step of the same configuration whose masters,
  // moments and compute copy this one reads and writes instead of its own (the verification runs
  // the other implementation so, on the same weights, without a second copy of them).
  void allocate(cudaStream_t stream, const StepBase* share = nullptr);
  virtual std::string describe() const = 0;

  // ---- parameters ----
  // GPT-2's initialisation on the fp32 masters: matrices and embeddings uniform with standard
  // deviation `std` (fill_random's [-1, 1) scaled by std·√3), biases 0, norm gains 1, norm biases 0;
  // the padding rows of padded tensors 0; compute copies written; moments zero, step count 0.
  void init_parameters(std::uint64_t seed, float std, cudaStream_t stream);
  // model_ref::named_tensors of the reference's parameters, in this step's table order.
  using Named = std::vector<std::pair<std::string, std::vector<double>*>>;
  using ConstNamed = std::vector<std::pair<std::string, const std::vector<double>*>>;
  void set_tensors(const ConstNamed& named, cudaStream_t stream);                     // the masters; synchronises
  void read_tensors(const float* device_fp32, double scale, const Named& out) const;  // synchronous
  void read_masters(const Named& out) const { read_tensors(master(), 1.0, out); }
  void read_gradients(const Named& out) const { read_tensors(grads(), grad_scale_, out); }  // unscaled
  void read_compute_copies(const Named& out) const;                                         // decoded exactly

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
  const float* master() const { return params_->master.as<float>(); }
  // The loss scale the gradients carry: 1 for bf16; for fp16 8·T, so that each logit's gradient
  // 8·(softmax − onehot) starts in fp16's normal range (see model_step_params.cpp).
  double grad_scale() const { return grad_scale_; }

 protected:
  // The architecture's forward (the loss into loss_) and backward (the gradients into grads_).
  virtual void forward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks) = 0;
  virtual void backward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks) = 0;
  // The architecture's own buffers (and plans), allocated after the shared ones.
  virtual void allocate_blocks(cudaStream_t stream) = 0;
  // The architecture's buffers that poison() sets to NaN.
  virtual std::vector<const DeviceBuffer*> activation_buffers() const = 0;
  // The sizes of what StepBase allocates itself (params, grads, the blocks' shared activations and
  // scratch, logits, losses, the embedding's and attention's workspaces, cuBLAS's); the
  // architecture adds its own.
  BufferSizes shared_sizes() const;

  // What block l keeps for its backward in both architectures: s_in = s_l, the residual stream
  // entering it (s_out = s_{l+1}); h = its first norm's output; the q, k, v heads [b, h, s, hd]
  // (Llama's K/V expanded to h heads); o heads; y = the merged attention output; mid = the residual
  // stream after attention; c = the second norm's output; eager: P [b·h·s, s]; fused: the
  // attention's log-sum-exp [b·h·s].
  struct BlockPtrs {
    void *s_in, *h, *q, *k, *v, *o, *y, *mid, *c, *s_out;
    void* probs;
    float* lse;
  };
  BlockPtrs block(long l) const;
  void* stream_at(long l) const;  // s_l (s_L: before the final norm)
  // The attention core over block l's heads into its o: eager unfused over the s x s scores, fused
  // by attention_; and its backward from the dO heads in dout_heads_ into dq, dk, dv in dheads_.
  void attention_forward(const BlockPtrs& p, cudaStream_t stream);
  void attention_backward(const BlockPtrs& p, cudaStream_t stream);

  void write_copies(cudaStream_t stream);  // the compute copy cast from the masters
  void* w(std::size_t offset) const;       // compute copy of a parameter
  float* g(std::size_t offset) const { return grads_.as<float>() + offset; }
  void* act(const DeviceBuffer& b, long layer, std::size_t elements_per_layer) const;
  // logits [T, logits_ld_] = z W^T with W the head matrix at `head` (the real V columns eager, Vp
  // fused), then the mean loss: eager as autocast runs cross_entropy (the logits cast to fp32,
  // softmax + cross-entropy in fp32), fused on the 16-bit logits. Marks fwd_lm_head and fwd_loss.
  void head_forward(const void* z, std::size_t head, const int* targets, cudaStream_t stream, PhaseMarks& marks);
  // The loss's gradient over the logits (eager: in fp32, cast back), then dW = dlogits^T z (fp32,
  // overwritten) and dz = dlogits W. Marks bwd_loss and bwd_lm_head.
  void head_backward(const void* z, std::size_t head, const int* targets, void* dz, cudaStream_t stream,
                     PhaseMarks& marks);
  // The lookup: out = table[token] (+ the position table's row at positions, or none). Marks
  // fwd_embedding.
  void embedding_forward(const int* tokens, std::size_t table, const void* positions, void* out, cudaStream_t stream,
                         PhaseMarks& marks) const;
  // Its backward: ds's rows scatter-added into g(table) (its other gradient, if any, already there)
  // and, for a position table's gradient dpositions (or nullptr), ds summed over the batch into it.
  // Marks bwd_embedding.
  void embedding_backward(const int* tokens, const void* ds, std::size_t table, float* dpositions, cudaStream_t stream,
                          PhaseMarks& marks);

  ModelStepConfig c_;
  Impl impl_;
  double grad_scale_ = 1;
  long logits_ld_ = 0;  // V (eager) or Vp (fused)
  FusedAttention attention_;
  // BlockPtrs' buffers (L slices each; streams_ L + 1), and z, the final norm's output.
  DeviceBuffer streams_, h_, qkvh_, o_, y_, mid_, c_buf_, z_, probs_, lse_;
  // Scratch shared by the layers: the branch output [T, d]; backward ds (the residual stream's
  // gradient), dtmp [T, d], head-major dO and dq/dk/dv; eager's score matrix, its lse and row dots.
  DeviceBuffer branch_, ds_, dtmp_, dout_heads_, dheads_, scores_, attn_lse_, row_dot_;

 private:
  struct Params {
    DeviceBuffer master, copy, m, v;
  };
  std::shared_ptr<Params> params_;
  kernels::AdamW adamw_{};  // adamw.cuh's defaults: lr 1e-4, betas 0.9 and 0.95, eps 1e-8, decay 0.1
  int step_ = 0;
  DeviceBuffer grads_, logits_, logits32_, losses_, loss_, emb_ws_;
  std::size_t emb_ws_bytes_ = 0;
  kernels::AdamWMultiTable adamw_table_;  // fused
};

// ---- GPT-2 ------------------------------------------------------------------------------------
struct BlockSlots {
  std::size_t ln1_g, ln1_b, w_qkv, b_qkv, w_o, b_o, ln2_g, ln2_b, w_fc, b_fc, w_proj, b_proj;
};

// Where each GPT-2 parameter lies, in model_ref::named_tensors order.
struct Gpt2Layout : StepLayout {
  explicit Gpt2Layout(const flops::ModelStepShape& m);
  std::size_t wte = 0, wpe = 0, lnf_g = 0, lnf_b = 0;  // offsets
  std::vector<BlockSlots> blocks;
  model_ref::Gpt2Config reference_config() const;
};

// The per-layer cuBLASLt plans of the fused step (a plan holds its bias and aux pointers).
struct LayerPlans {
  LtGemm qkv;       // qkv = h W_qkv^T + b_qkv                        (BIAS)
  LtGemm out_proj;  // branch = y W_o^T + b_o                          (BIAS)
  LtGemm fc;        // a = gelu(c W_fc^T + b_fc), pre kept as aux      (GELU_AUX_BIAS)
  LtGemm proj;      // branch = a W_proj^T + b_proj                    (BIAS)
  LtGemm dfc;       // d4 = (ds W_proj) gelu'(pre), db_fc in 16 bits   (DGELU_BGRAD)
};

// One GPT-2 training step on the device: eager or fused forward + backward over StepBase's buffers.
class Gpt2Step final : public StepBase {
 public:
  Gpt2Step(const ModelStepConfig& c, Impl impl);
  ~Gpt2Step() override;
  const StepLayout& shape() const override { return lay_; }
  BufferSizes sizes() const override;
  std::string describe() const override;

 private:
  void allocate_blocks(cudaStream_t stream) override;
  std::vector<const DeviceBuffer*> activation_buffers() const override;
  void forward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks) override;
  void backward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks) override;
  // LN_f's backward of dz (in dtmp) into ds, after the LM head's.
  void final_norm_backward(cudaStream_t stream, PhaseMarks& marks);
  // model_step_eager.cpp
  void eager_forward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks);
  void eager_backward(const int* tokens, cudaStream_t stream, PhaseMarks& marks);
  // model_step_fused.cpp
  void plan_fused();
  void fused_forward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks);
  void fused_backward(const int* tokens, cudaStream_t stream, PhaseMarks& marks);

  std::size_t stat_stride() const;
  // LayerNorm statistics: LN1 of block l is norm 2l, LN2 norm 2l + 1, LN_f norm 2L.
  float* mean_at(long norm) const;
  float* rstd_at(long norm) const;
  // What block l keeps for its backward: BlockPtrs and the MLP's pre = fc pre-activation, a = GELU
  // out.
  struct LayerPtrs : BlockPtrs {
    void *pre, *a;
  };
  LayerPtrs layer(long l) const;

  Gpt2Layout lay_;
  long aux_ld_ = 0;  // the GELU pre-activation's row length (cuBLASLt's aux needs a multiple of 8)

  // Kept per layer (L slices each): pre, a; mean / rstd of LN1, LN2 (per layer) and LN_f.
  DeviceBuffer pre_, a_, mean_, rstd_;
  // Scratch: forward qkv [T, 3d]; backward d4 [T, ff], dqkv [T, 3d]; fused's bias gradient of the
  // fc layer.
  DeviceBuffer qkv_, d4_, dqkv_, db_fc_;
  DeviceBuffer ln_ws_;

  // fused: the cuBLASLt plans per layer
  std::vector<std::unique_ptr<LayerPlans>> plans_;
};

// ---- Llama ------------------------------------------------------------------------------------
struct LlamaBlockSlots {
  std::size_t attn_norm, w_q, w_k, w_v, w_o, mlp_norm, w_gate, w_up, w_down;
};

// Where each Llama parameter lies, in model_ref::named_tensors order. w_q, w_k and w_v follow one
// another without padding, as do w_gate and w_up: [w_gate; w_up] is the [2 ff, d] matrix of the
// one gate/up GEMM (swiglu.cuh's layout), and its gradient one [2 ff, d] GEMM too. The head is
// padded to Vp rows (zero) for the fused step's GEMMs, as GPT-2's wte.
struct LlamaLayout : StepLayout {
  explicit LlamaLayout(const flops::ModelStepShape& m);
  std::size_t tok_emb = 0, final_norm = 0, head = 0;  // offsets
  std::vector<LlamaBlockSlots> blocks;
  model_ref::LlamaConfig reference_config() const;
};

// One Llama training step (model_step_llama.cpp): eager and fused share one forward and one
// backward, each operation the implementation's own where they differ.
class LlamaStep final : public StepBase {
 public:
  LlamaStep(const ModelStepConfig& c, Impl impl);
  ~LlamaStep() override;
  std::string describe() const override;
  const StepLayout& shape() const override { return lay_; }
  BufferSizes sizes() const override;

 private:
  void forward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks) override;
  void backward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks) override;
  // q, k, v token-major (the projections' outputs) -> head-major, RoPE on q and k, K and V
  // expanded to h heads (repeat_kv) into the layer's q, k, v.
  void attention_inputs(long l, cudaStream_t stream);
  // The reverse, from the expanded heads' gradients in dheads_ to token-major dq, dk, dv.
  void attention_input_gradients(cudaStream_t stream);
  void allocate_blocks(cudaStream_t stream) override;
  std::vector<const DeviceBuffer*> activation_buffers() const override;
  float* rrms_at(long norm) const;  // norm 2l, 2l + 1 of block l; 2L the final one
  // What block l keeps: BlockPtrs and the MLP's gu = [gate | up] [T, 2 ff], eager's silu(gate)
  // [T, ff], m = the SwiGLU output [T, ff].
  struct LayerPtrs : BlockPtrs {
    void *gu, *silu, *m;
  };
  LayerPtrs layer(long l) const;

  LlamaLayout lay_;
  // Per layer: gu, silu (eager), m; 1/rms of the 2L + 1 norms.
  DeviceBuffer gu_, silu_, m_buf_, rrms_;
  // Scratch: token-major q, k, v (forward) and dq, dk, dv (backward) [T, d + 2 kv]; K/V heads
  // before expansion (and their gradients) [2, b, kvh, s, hd]; dm [T, ff]; dgu [T, 2 ff]; eager:
  // dsilu [T, ff].
  DeviceBuffer qkv_tok_, kv_heads_, dm_, dgu_, dsilu_;
  DeviceBuffer norm_ws_;
};

// The step of c's architecture (model_step.cpp); allocates nothing.
std::unique_ptr<StepBase> make_step(const ModelStepConfig& c, Impl impl);

// ---- model_step_eager.cpp, used by both GPT-2 steps ----
inline constexpr float kLnEps = 1e-5f;  // GPT-2's LayerNorm epsilon (model_ref::Gpt2Config::ln_eps)
// A linear layer's backward, y = x W^T + b with W [out, in]: dW [out, in] = dy^T x and db = Σ_rows dy,
// both fp32 (overwritten); dx [T, in] = dy W in the compute dtype.
void linear_backward(DType t, const void* dy, const void* x, const void* weight, float* dweight, float* dbias, void* dx,
                     long T, long in, long out, cudaStream_t stream);

// ---- model_step_check.cpp ----
// GPT-2's initialisation scale of matrices and embeddings (the published model's 0.02).
inline constexpr float kInitStd = 0.02f;
// `count` ids uniform in [0, vocab) from `seed`, copied to device memory on `stream` (waited for).
void upload_random_ids(std::uint64_t seed, long vocab, std::size_t count, int* device, cudaStream_t stream);
// The check before timing, at the step's own shape: fresh GPT-2 initialisation and random tokens;
// the loss finite and near its value at initialisation; every gradient finite (poisoned first);
// the other implementation run on the same weights and tokens, its loss and sampled gradients
// matching; then AdamW keeps the masters finite. tokens / targets: input set 0 of the workload.
Verification verify_step(StepBase& step, const ModelStepConfig& c, int* tokens, int* targets, cudaStream_t stream);

}  // namespace wflops::model_step_detail
