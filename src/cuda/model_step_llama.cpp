// The Llama step (model_step_impl.hpp, LlamaStep), eager and fused in one forward and one backward
// that differ operation by operation. Both:
//   the token embedding (no position table); per block: RMSNorm; the q, k and v projections (three
//   cuBLAS GEMMs, as Hugging Face's q_proj, k_proj and v_proj); the heads split to [b, heads, s,
//   hd]; RoPE on q and k at each token's position within its sequence (kernels/model/rope.cuh);
//   K and V expanded from kvh to h heads (repeat_kv, kernels/model/repeat_kv.cuh); attention over
//   h heads; heads merged; the output GEMM; residual; RMSNorm; one gate/up GEMM into [T, 2 ff]
//   (w_gate and w_up are one [2 ff, d] matrix, swiglu.cuh's layout); SwiGLU; the down GEMM;
//   residual; the final RMSNorm; the untied LM head; mean cross-entropy (StepBase's);
//   backward in reverse, weight gradients in fp32, the K/V gradients summed back over each group,
//   the RoPE gradients rotated back; the embedding's scatter-add; AdamW (StepBase's).
// eager (Hugging Face LlamaForCausalLM's eager attention, under autocast): the masters cast first;
//   RMSNorm and the residual adds as separate kernels; silu(gate) and the multiply by up as two
//   passes (and three backward); attention unfused over the s x s scores (P kept per layer);
//   cross-entropy on an fp32 copy of the logits; per-tensor AdamW.
// fused: residual add + RMSNorm in one kernel each way (kernels/model/rmsnorm_residual.cuh), the
//   SwiGLU kernel (its own activation phase: no cuBLASLt epilogue computes SwiGLU, so unlike GPT-2's
//   GELU it is not folded into a GEMM's phase; model_phases::fused_into), fused attention (FusedAttention: cuDNN's SDPA
//   or our FlashAttention-2; both take one head count for Q, K and V, so they run on the expanded K/V and their K/V
//   gradients are summed back by repeat_kv's backward), cross-entropy on the 16-bit logits over the padded vocabulary,
//   one multi-tensor AdamW. The projections carry no biases, so cuBLASLt epilogues have nothing to fuse: plain
//   cublasGemmEx as eager.
#include <stdexcept>
#include <string>

#include "attention/attention_dims.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/model_step_impl.hpp"
#include "elementwise/residual_add.cuh"
#include "elementwise/swiglu.cuh"
#include "model/head_layout.cuh"
#include "model/repeat_kv.cuh"
#include "model/rmsnorm_residual.cuh"
#include "model/rope.cuh"

namespace wflops::model_step_detail {

namespace {

constexpr float kNormEps = 1e-5f;      // model_ref::LlamaConfig::norm_eps
constexpr double kRopeTheta = 500000;  // Llama 3's base (model_ref::LlamaConfig::rope_theta)

}  // namespace

LlamaLayout::LlamaLayout(const flops::ModelStepShape& m) : StepLayout(m) {
  // With d·d_ff a multiple of 128 elements (model_step_unsupported_reason), w_up follows w_gate
  // without padding: the gate/up GEMM reads them as one [2 d_ff, d] matrix.
  const std::size_t du = static_cast<std::size_t>(d), fu = static_cast<std::size_t>(ff);
  const std::size_t kvu = static_cast<std::size_t>(kv);
  tok_emb = add("tok_emb", static_cast<std::size_t>(V) * du, TensorKind::matrix);
  for (long l = 0; l < L; ++l) {
    const std::string p = "h" + std::to_string(l) + ".";
    LlamaBlockSlots k{};
    k.attn_norm = add(p + "attn_norm", du, TensorKind::gain);
    k.w_q = add(p + "w_q", du * du, TensorKind::matrix);
    k.w_k = add(p + "w_k", kvu * du, TensorKind::matrix);
    k.w_v = add(p + "w_v", kvu * du, TensorKind::matrix);
    k.w_o = add(p + "w_o", du * du, TensorKind::matrix);
    k.mlp_norm = add(p + "mlp_norm", du, TensorKind::gain);
    k.w_gate = add(p + "w_gate", fu * du, TensorKind::matrix);
    k.w_up = add(p + "w_up", fu * du, TensorKind::matrix);
    k.w_down = add(p + "w_down", du * fu, TensorKind::matrix);
    blocks.push_back(k);
  }
  final_norm = add("final_norm", du, TensorKind::gain);
  head = add("head", static_cast<std::size_t>(V) * du, TensorKind::matrix, static_cast<std::size_t>(Vp) * du);
}

model_ref::LlamaConfig LlamaLayout::reference_config() const {
  return {V, s, d, h, kvh, ff, L, b};  // vocab, seq, hidden, heads, kv_heads, ffn, layers, batch (Llama 3's eps, theta)
}

LlamaStep::LlamaStep(const ModelStepConfig& c, Impl impl) : StepBase(c, impl), lay_(c.shape) {}

LlamaStep::~LlamaStep() = default;

BufferSizes LlamaStep::sizes() const {
  const std::size_t e = dtype_bytes(c_.dtype), T = static_cast<std::size_t>(lay_.T);
  const std::size_t L = static_cast<std::size_t>(lay_.L), tf = slice_bytes(T * static_cast<std::size_t>(lay_.ff), e);
  const std::size_t gu = slice_bytes(2 * T * static_cast<std::size_t>(lay_.ff), e);
  const std::size_t silu = impl_ == Impl::eager ? tf : 0;
  BufferSizes out = shared_sizes();
  // Per layer gu, m and (eager) silu(gate); 1/rms of 2L + 1 norms.
  out.activations += L * (gu + tf + silu) + (2 * L + 1) * slice_bytes(T, sizeof(float));
  // q/k/v (dq/dk/dv) token-major, the K/V heads before expansion; dm; dgu; eager: dsilu.
  out.temps += slice_bytes(T * static_cast<std::size_t>(lay_.d + 2 * lay_.kv), e) +
               slice_bytes(2 * T * static_cast<std::size_t>(lay_.kv), e) + tf + gu + silu;
  out.workspaces += align_up(kernels::rmsnorm_backward_workspace_bytes(T, static_cast<std::size_t>(lay_.d)));
  return out;
}

void LlamaStep::allocate_blocks(cudaStream_t) {
  // The gate/up GEMMs read [w_gate; w_up] as one matrix (and write its gradient so).
  const std::size_t gate = static_cast<std::size_t>(lay_.ff) * static_cast<std::size_t>(lay_.d);
  for (const LlamaBlockSlots& k : lay_.blocks) {
    if (k.w_up != k.w_gate + gate) throw std::logic_error("LlamaLayout: w_up does not follow w_gate");
  }
  const std::size_t e = dtype_bytes(c_.dtype), T = static_cast<std::size_t>(lay_.T);
  const std::size_t L = static_cast<std::size_t>(lay_.L), tf = slice_bytes(T * static_cast<std::size_t>(lay_.ff), e);
  const std::size_t gu = slice_bytes(2 * T * static_cast<std::size_t>(lay_.ff), e);
  gu_ = DeviceBuffer(L * gu);
  m_buf_ = DeviceBuffer(L * tf);
  rrms_ = DeviceBuffer((2 * L + 1) * slice_bytes(T, sizeof(float)));
  if (impl_ == Impl::eager) {
    silu_ = DeviceBuffer(L * tf);
    dsilu_ = DeviceBuffer(tf);
  }
  qkv_tok_ = DeviceBuffer(slice_bytes(T * static_cast<std::size_t>(lay_.d + 2 * lay_.kv), e));
  kv_heads_ = DeviceBuffer(slice_bytes(2 * T * static_cast<std::size_t>(lay_.kv), e));
  dm_ = DeviceBuffer(tf);
  dgu_ = DeviceBuffer(gu);
  norm_ws_ = DeviceBuffer(kernels::rmsnorm_backward_workspace_bytes(T, static_cast<std::size_t>(lay_.d)));
}

std::vector<const DeviceBuffer*> LlamaStep::activation_buffers() const { return {&gu_, &silu_, &m_buf_, &rrms_}; }

std::string LlamaStep::describe() const {
  if (impl_ == Impl::eager) {
    return "eager: cuBLAS cublasGemmEx (q, k, v, o, gate|up, down, head), one of our kernels per RMSNorm, residual, "
           "RoPE, repeat_kv, SiLU and multiply, unfused attention over s x s scores, fp32 cross-entropy on a cast "
           "of the logits, per-tensor AdamW";
  }
  return "fused: cuBLAS cublasGemmEx (no biases to fuse), fused residual+RMSNorm, SwiGLU kernel, RoPE and repeat_kv "
         "(K/V expanded to h heads for the engine, their gradients summed back), " +
         attention_.describe() + ", fused softmax+cross-entropy on 16-bit logits, one multi-tensor AdamW";
}

float* LlamaStep::rrms_at(long norm) const {
  return reinterpret_cast<float*>(rrms_.as<char>() + static_cast<std::size_t>(norm) *
                                                         slice_bytes(static_cast<std::size_t>(lay_.T), sizeof(float)));
}

LlamaStep::LayerPtrs LlamaStep::layer(long l) const {
  const std::size_t tf = static_cast<std::size_t>(lay_.T) * static_cast<std::size_t>(lay_.ff);
  LayerPtrs p{block(l), nullptr, nullptr, nullptr};
  p.gu = act(gu_, l, 2 * tf);
  p.silu = silu_.get() ? act(silu_, l, tf) : nullptr;
  p.m = act(m_buf_, l, tf);
  return p;
}

namespace {

// The token-major q [T, d], k [T, kv], v [T, kv] one after another in `base`; the K/V heads
// [b, kvh, s, hd] before expansion one after the other in `heads`.
struct QkvParts {
  void *q, *k, *v, *k_heads, *v_heads;
};
QkvParts qkv_parts(const StepLayout& lay, DType t, void* base, void* heads) {
  const std::size_t e = dtype_bytes(t), T = static_cast<std::size_t>(lay.T);
  char* tok = static_cast<char*>(base);
  char* kv = static_cast<char*>(heads);
  const std::size_t q_bytes = T * static_cast<std::size_t>(lay.d) * e,
                    kv_bytes = T * static_cast<std::size_t>(lay.kv) * e;
  return {tok, tok + q_bytes, tok + q_bytes + kv_bytes, kv, kv + kv_bytes};
}

}  // namespace

void LlamaStep::attention_inputs(long l, cudaStream_t stream) {
  const DType t = c_.dtype;
  const LayerPtrs p = layer(l);
  const QkvParts x = qkv_parts(lay_, t, qkv_tok_.get(), kv_heads_.get());
  const std::size_t b = static_cast<std::size_t>(lay_.b), s = static_cast<std::size_t>(lay_.s);
  const std::size_t h = static_cast<std::size_t>(lay_.h), kvh = static_cast<std::size_t>(lay_.kvh);
  const std::size_t hd = static_cast<std::size_t>(lay_.hd);
  CUDA_CHECK(kernels::split_heads(t, x.q, p.q, lay_.heads(1), stream));
  CUDA_CHECK(kernels::split_heads(t, x.k, x.k_heads, lay_.heads(1, lay_.kvh), stream));
  CUDA_CHECK(kernels::split_heads(t, x.v, x.v_heads, lay_.heads(1, lay_.kvh), stream));
  CUDA_CHECK(kernels::rope(t, p.q, p.q, {b, h, s, hd}, kRopeTheta, false, stream));
  CUDA_CHECK(kernels::rope(t, x.k_heads, x.k_heads, {b, kvh, s, hd}, kRopeTheta, false, stream));
  const kernels::RepeatKvDims group{b, h, kvh, s, hd};
  CUDA_CHECK(kernels::repeat_kv_forward(t, x.k_heads, p.k, group, stream));
  CUDA_CHECK(kernels::repeat_kv_forward(t, x.v_heads, p.v, group, stream));
}

void LlamaStep::attention_input_gradients(cudaStream_t stream) {
  const DType t = c_.dtype;
  const QkvParts x = qkv_parts(lay_, t, qkv_tok_.get(), kv_heads_.get());
  const std::size_t b = static_cast<std::size_t>(lay_.b), s = static_cast<std::size_t>(lay_.s);
  const std::size_t h = static_cast<std::size_t>(lay_.h), kvh = static_cast<std::size_t>(lay_.kvh);
  const std::size_t hd = static_cast<std::size_t>(lay_.hd), bytes = lay_.td() * dtype_bytes(t);
  char* dq = dheads_.as<char>();
  const kernels::RepeatKvDims group{b, h, kvh, s, hd};
  CUDA_CHECK(kernels::repeat_kv_backward(t, dq + bytes, x.k_heads, group, stream));
  CUDA_CHECK(kernels::repeat_kv_backward(t, dq + 2 * bytes, x.v_heads, group, stream));
  CUDA_CHECK(kernels::rope(t, dq, dq, {b, h, s, hd}, kRopeTheta, true, stream));
  CUDA_CHECK(kernels::rope(t, x.k_heads, x.k_heads, {b, kvh, s, hd}, kRopeTheta, true, stream));
  CUDA_CHECK(kernels::merge_heads(t, dq, x.q, lay_.heads(1), stream));
  CUDA_CHECK(kernels::merge_heads(t, x.k_heads, x.k, lay_.heads(1, lay_.kvh), stream));
  CUDA_CHECK(kernels::merge_heads(t, x.v_heads, x.v, lay_.heads(1, lay_.kvh), stream));
}

void LlamaStep::forward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks) {
  const DType t = c_.dtype;
  const bool fused = impl_ == Impl::fused;
  const long T = lay_.T, d = lay_.d, ff = lay_.ff, L = lay_.L;
  const std::size_t Tu = static_cast<std::size_t>(T), du = static_cast<std::size_t>(d);
  const std::size_t ffu = static_cast<std::size_t>(ff), e = dtype_bytes(t);
  const QkvParts x = qkv_parts(lay_, t, qkv_tok_.get(), kv_heads_.get());
  // y = RMSNorm(a + b) (b nullptr: of a alone), s = a + b where b is given; statistics of norm n.
  auto norm = [&](const void* a, const void* b, void* s, std::size_t gain, void* y, long n) {
    CUDA_CHECK(kernels::residual_rmsnorm_forward(t, a, b, s, w(gain), y, rrms_at(n), Tu, du, kNormEps, stream));
    marks.mark("fwd_norm");
  };
  auto residual = [&](const void* a, const void* b, void* s) {
    CUDA_CHECK(kernels::residual_add(t, a, b, s, lay_.td(), stream));
    marks.mark("fwd_residual");
  };

  if (!fused) {
    write_copies(stream);  // autocast's casts of the fp32 weights, booked to the optimizer (model_phases.hpp)
    marks.mark("optimizer");
  }
  embedding_forward(tokens, lay_.tok_emb, nullptr, stream_at(0), stream, marks);
  if (fused) norm(stream_at(0), nullptr, nullptr, lay_.blocks[0].attn_norm, layer(0).h, 0);
  for (long l = 0; l < L; ++l) {
    const LlamaBlockSlots& k = lay_.blocks[static_cast<std::size_t>(l)];
    const LayerPtrs p = layer(l);
    if (!fused) norm(p.s_in, nullptr, nullptr, k.attn_norm, p.h, 2 * l);
    gemm_rm({false, true, T, d, d}, t, p.h, w(k.w_q), t, x.q, 0.0f, stream);
    gemm_rm({false, true, T, lay_.kv, d}, t, p.h, w(k.w_k), t, x.k, 0.0f, stream);
    gemm_rm({false, true, T, lay_.kv, d}, t, p.h, w(k.w_v), t, x.v, 0.0f, stream);
    marks.mark("fwd_qkv");
    attention_inputs(l, stream);
    attention_forward(p, stream);
    CUDA_CHECK(kernels::merge_heads(t, p.o, p.y, lay_.heads(1), stream));
    marks.mark("fwd_attention");
    gemm_rm({false, true, T, d, d}, t, p.y, w(k.w_o), t, branch_.get(), 0.0f, stream);
    marks.mark("fwd_out_proj");
    if (fused) {
      norm(p.s_in, branch_.get(), p.mid, k.mlp_norm, p.c, 2 * l + 1);  // mid = s_l + branch; c = RMSNorm(mid)
    } else {
      residual(p.s_in, branch_.get(), p.mid);
      norm(p.mid, nullptr, nullptr, k.mlp_norm, p.c, 2 * l + 1);
    }
    gemm_rm({false, true, T, 2 * ff, d}, t, p.c, w(k.w_gate), t, p.gu, 0.0f, stream);  // [gate | up] = c [W_g; W_u]^T
    marks.mark("fwd_mlp_up");
    if (fused) {
      CUDA_CHECK(kernels::swiglu_forward(t, p.gu, p.m, Tu, ffu, stream));
    } else {
      const char* up = static_cast<const char*>(p.gu) + ffu * e;
      CUDA_CHECK(kernels::silu_forward_2d(t, p.gu, 2 * ffu, p.silu, ffu, Tu, ffu, stream));
      CUDA_CHECK(kernels::multiply_2d(t, p.silu, ffu, up, 2 * ffu, p.m, ffu, Tu, ffu, stream));
    }
    marks.mark("fwd_activation");
    gemm_rm({false, true, T, d, ff}, t, p.m, w(k.w_down), t, branch_.get(), 0.0f, stream);
    marks.mark("fwd_mlp_down");
    if (fused) {
      // s_{l+1} = mid + MLP branch, normalised by the next block's first norm or the final one.
      const bool last = l + 1 == L;
      norm(p.mid, branch_.get(), p.s_out,
           last ? lay_.final_norm : lay_.blocks[static_cast<std::size_t>(l + 1)].attn_norm,
           last ? z_.get() : layer(l + 1).h, 2 * (l + 1));
    } else {
      residual(p.mid, branch_.get(), p.s_out);
    }
  }
  if (!fused) norm(stream_at(L), nullptr, nullptr, lay_.final_norm, z_.get(), 2 * L);
  head_forward(z_.get(), lay_.head, targets, stream, marks);
}

void LlamaStep::backward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks) {
  const DType t = c_.dtype;
  const bool fused = impl_ == Impl::fused;
  const long T = lay_.T, d = lay_.d, ff = lay_.ff, L = lay_.L, kv = lay_.kv;
  const std::size_t Tu = static_cast<std::size_t>(T), du = static_cast<std::size_t>(d);
  const std::size_t ffu = static_cast<std::size_t>(ff), e = dtype_bytes(t);
  const QkvParts x = qkv_parts(lay_, t, qkv_tok_.get(), kv_heads_.get());
  // The backward of norm n (input s, gain at `gain`) of dtmp: fused, added onto the residual
  // stream's gradient ds in place; eager, into dtmp and then added to ds as its own pass.
  auto norm_backward = [&](const void* s, std::size_t gain, long n) {
    CUDA_CHECK(kernels::rmsnorm_backward(t, dtmp_.get(), s, w(gain), rrms_at(n), fused ? ds_.get() : nullptr,
                                         fused ? ds_.get() : dtmp_.get(), g(gain), false, norm_ws_.get(), Tu, du,
                                         stream));
    marks.mark("bwd_norm");
    if (!fused) {
      CUDA_CHECK(kernels::residual_add(t, ds_.get(), dtmp_.get(), ds_.get(), lay_.td(), stream));
      marks.mark("bwd_residual");
    }
  };

  head_backward(z_.get(), lay_.head, targets, dtmp_.get(), stream, marks);  // dz in dtmp
  CUDA_CHECK(kernels::rmsnorm_backward(t, dtmp_.get(), stream_at(L), w(lay_.final_norm), rrms_at(2 * L), nullptr,
                                       ds_.get(), g(lay_.final_norm), false, norm_ws_.get(), Tu, du, stream));
  marks.mark("bwd_norm");
  for (long l = L - 1; l >= 0; --l) {
    const LlamaBlockSlots& k = lay_.blocks[static_cast<std::size_t>(l)];
    const LayerPtrs p = layer(l);
    // ds holds the gradient of s_{l+1} = mid + MLP branch: that of the down projection's output.
    gemm_rm({true, false, d, ff, T}, t, ds_.get(), p.m, DType::fp32, g(k.w_down), 0.0f, stream);  // ds^T m
    gemm_rm({false, false, T, ff, d}, t, ds_.get(), w(k.w_down), t, dm_.get(), 0.0f, stream);     // dm = ds W_down
    char* dup = dgu_.as<char>() + ffu * e;
    marks.mark("bwd_mlp_down");
    if (fused) {
      CUDA_CHECK(kernels::swiglu_backward(t, dm_.get(), p.gu, dgu_.get(), Tu, ffu, stream));
    } else {
      // m = silu(gate) * up: d silu = dm * up, d up = dm * silu(gate), d gate = d silu * silu'(gate).
      const char* up = static_cast<const char*>(p.gu) + ffu * e;
      CUDA_CHECK(kernels::multiply_2d(t, dm_.get(), ffu, up, 2 * ffu, dsilu_.get(), ffu, Tu, ffu, stream));
      CUDA_CHECK(kernels::multiply_2d(t, dm_.get(), ffu, p.silu, ffu, dup, 2 * ffu, Tu, ffu, stream));
      CUDA_CHECK(kernels::silu_backward_2d(t, dsilu_.get(), ffu, p.gu, 2 * ffu, dgu_.get(), 2 * ffu, Tu, ffu, stream));
    }
    marks.mark("bwd_activation");
    // [dW_gate; dW_up] = dgu^T c, one [2 ff, d] gradient; dc = dgu [W_gate; W_up].
    gemm_rm({true, false, 2 * ff, d, T}, t, dgu_.get(), p.c, DType::fp32, g(k.w_gate), 0.0f, stream);
    gemm_rm({false, false, T, d, 2 * ff}, t, dgu_.get(), w(k.w_gate), t, dtmp_.get(), 0.0f, stream);
    marks.mark("bwd_mlp_up");
    norm_backward(p.mid, k.mlp_norm, 2 * l + 1);                                              // ds: the gradient of mid
    gemm_rm({true, false, d, d, T}, t, ds_.get(), p.y, DType::fp32, g(k.w_o), 0.0f, stream);  // ds^T y
    gemm_rm({false, false, T, d, d}, t, ds_.get(), w(k.w_o), t, dtmp_.get(), 0.0f, stream);   // dy = ds W_o
    marks.mark("bwd_out_proj");
    CUDA_CHECK(kernels::split_heads(t, dtmp_.get(), dout_heads_.get(), lay_.heads(1), stream));
    attention_backward(p, stream);
    attention_input_gradients(stream);  // token-major dq, dk, dv where the forward's q, k, v were
    marks.mark("bwd_attention");
    // dW = d(q|k|v)^T h each; dh = dq W_q + dk W_k + dv W_v, the last two added onto the first.
    gemm_rm({true, false, d, d, T}, t, x.q, p.h, DType::fp32, g(k.w_q), 0.0f, stream);
    gemm_rm({true, false, kv, d, T}, t, x.k, p.h, DType::fp32, g(k.w_k), 0.0f, stream);
    gemm_rm({true, false, kv, d, T}, t, x.v, p.h, DType::fp32, g(k.w_v), 0.0f, stream);
    gemm_rm({false, false, T, d, d}, t, x.q, w(k.w_q), t, dtmp_.get(), 0.0f, stream);
    gemm_rm({false, false, T, d, kv}, t, x.k, w(k.w_k), t, dtmp_.get(), 1.0f, stream);
    gemm_rm({false, false, T, d, kv}, t, x.v, w(k.w_v), t, dtmp_.get(), 1.0f, stream);
    marks.mark("bwd_qkv");
    norm_backward(p.s_in, k.attn_norm, 2 * l);  // ds: the gradient of s_l
  }
  // The untied embedding's only gradient is the lookup's.
  CUDA_CHECK(cudaMemsetAsync(g(lay_.tok_emb), 0, static_cast<std::size_t>(lay_.V) * du * sizeof(float), stream));
  embedding_backward(tokens, ds_.get(), lay_.tok_emb, nullptr, stream, marks);
}

}  // namespace wflops::model_step_detail
