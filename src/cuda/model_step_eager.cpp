// The eager GPT-2 step (model_step_impl.hpp): what eager PyTorch runs under autocast, one cuBLAS
// GEMM per linear layer and one of our kernels per elementwise operation, in its order:
//   the masters cast to the compute dtype; embedding lookup + position table;
//   per block: LN1; QKV GEMM, bias; split heads, S = Q K^T, causal softmax, O = P V (the s x s
//   score and probability matrices in memory, P kept per layer for the backward), merge heads;
//   output GEMM, bias; residual add; LN2; fc GEMM, bias; GELU; proj GEMM, bias; residual add;
//   LN_f; LM head GEMM (the tied wte, the real vocabulary V: no padding);
//   the loss as autocast runs cross_entropy: the logits cast to fp32, then log-softmax and NLL in
//   fp32 (here one fp32 pass of our softmax + cross-entropy kernel, which writes no
//   log-probabilities: one pass fewer than eager's two);
//   backward in reverse: the fp32 loss gradient cast back to 16 bits; each linear layer's weight
//   gradient (fp32 output) and input gradient GEMMs and its bias reduction; GELU and LayerNorm
//   backward passes; the residual gradients added where branches meet; the embedding's
//   scatter-add; then AdamW, one launch per tensor (PyTorch's for-loop implementation).
// Linear layers: y = x W^T with W [out, in] (nn.Linear); mlp_gemm.hpp maps them to cuBLAS.
#include "attention/attention_dims.cuh"
#include "cuda/attention_unfused.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/model_step_impl.hpp"
#include "elementwise/activation.cuh"
#include "elementwise/bias_add.cuh"
#include "elementwise/bias_grad.cuh"
#include "elementwise/cast.cuh"
#include "elementwise/residual_add.cuh"
#include "model/cross_entropy.cuh"
#include "model/embedding.cuh"
#include "model/head_layout.cuh"
#include "model/layernorm_residual.cuh"

namespace wflops::model_step_detail {

namespace {

constexpr float kLnEps = 1e-5f;  // GPT-2's (model_ref::Gpt2Config::ln_eps)

// y [T, out] = x [T, in] W^T (+ bias as its own pass).
void linear_forward(DType t, const void* x, const void* weight, const void* bias, void* y, long T, long in, long out,
                    cudaStream_t stream) {
  gemm_rm({false, true, T, out, in}, t, x, weight, t, y, 0.0f, stream);
  CUDA_CHECK(kernels::bias_add(t, y, bias, y, T, out, stream));
}

// dW [out, in] = dy^T x and db = Σ_rows dy, both fp32; dx [T, in] = dy W.
void linear_backward(DType t, const void* dy, const void* x, const void* weight, float* dweight, float* dbias, void* dx,
                     long T, long in, long out, cudaStream_t stream) {
  gemm_rm({true, false, out, in, T}, t, dy, x, DType::fp32, dweight, 0.0f, stream);
  CUDA_CHECK(kernels::bias_grad(t, dy, DType::fp32, dbias, T, out, stream));
  gemm_rm({false, false, T, in, out}, t, dy, weight, t, dx, 0.0f, stream);
}

}  // namespace

void Gpt2Step::eager_forward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks) {
  const DType t = c_.dtype;
  const long T = lay_.T, d = lay_.d, ff = lay_.ff, V = lay_.V;
  const std::size_t td = lay_.td(), tf = static_cast<std::size_t>(T) * ff, Tu = static_cast<std::size_t>(T);
  const std::size_t du = static_cast<std::size_t>(d);
  const kernels::AttentionDims dims = lay_.attention_dims();
  PhaseMarks quiet;  // unfused attention's own part names are not the model's phases

  write_copies(stream);  // autocast's casts of the fp32 weights, booked to the optimizer (model_phases.hpp)
  marks.mark("optimizer");
  CUDA_CHECK(kernels::embedding_forward(t, tokens, w(lay_.wte), w(lay_.wpe), stream_at(0), Tu,
                                        static_cast<std::size_t>(lay_.s), static_cast<std::size_t>(V), du, stream));
  marks.mark("fwd_embedding");
  for (long l = 0; l < lay_.L; ++l) {
    const BlockSlots& k = lay_.blocks[static_cast<std::size_t>(l)];
    const LayerPtrs p = layer(l);
    CUDA_CHECK(kernels::residual_layernorm_forward(t, p.s_in, nullptr, nullptr, w(k.ln1_g), w(k.ln1_b), p.h,
                                                   mean_at(2 * l), rstd_at(2 * l), Tu, du, kLnEps, stream));
    marks.mark("fwd_norm");
    linear_forward(t, p.h, w(k.w_qkv), w(k.b_qkv), qkv_.get(), T, d, 3 * d, stream);
    marks.mark("fwd_qkv");
    CUDA_CHECK(kernels::split_heads(t, qkv_.get(), p.q, lay_.heads(3), stream));
    const UnfusedScratch scratch{scores_.get(), p.probs, attn_lse_.as<float>(), row_dot_.as<float>()};
    unfused_attention_forward(t, p.q, p.k, p.v, p.o, scratch, dims, stream, quiet);
    CUDA_CHECK(kernels::merge_heads(t, p.o, p.y, lay_.heads(1), stream));
    marks.mark("fwd_attention");
    linear_forward(t, p.y, w(k.w_o), w(k.b_o), branch_.get(), T, d, d, stream);
    marks.mark("fwd_out_proj");
    CUDA_CHECK(kernels::residual_add(t, p.s_in, branch_.get(), p.mid, td, stream));
    marks.mark("fwd_residual");
    CUDA_CHECK(kernels::residual_layernorm_forward(t, p.mid, nullptr, nullptr, w(k.ln2_g), w(k.ln2_b), p.c,
                                                   mean_at(2 * l + 1), rstd_at(2 * l + 1), Tu, du, kLnEps, stream));
    marks.mark("fwd_norm");
    linear_forward(t, p.c, w(k.w_fc), w(k.b_fc), p.pre, T, d, ff, stream);
    marks.mark("fwd_mlp_up");
    CUDA_CHECK(kernels::activation_forward(t, kernels::Activation::gelu, p.pre, p.a, tf, stream));
    marks.mark("fwd_activation");
    linear_forward(t, p.a, w(k.w_proj), w(k.b_proj), branch_.get(), T, ff, d, stream);
    marks.mark("fwd_mlp_down");
    CUDA_CHECK(kernels::residual_add(t, p.mid, branch_.get(), p.s_out, td, stream));
    marks.mark("fwd_residual");
  }
  const long L = lay_.L;
  CUDA_CHECK(kernels::residual_layernorm_forward(t, stream_at(L), nullptr, nullptr, w(lay_.lnf_g), w(lay_.lnf_b),
                                                 z_.get(), mean_at(2 * L), rstd_at(2 * L), Tu, du, kLnEps, stream));
  marks.mark("fwd_norm");
  gemm_rm({false, true, T, V, d}, t, z_.get(), w(lay_.wte), t, logits_.get(), 0.0f, stream);  // z wte^T
  marks.mark("fwd_lm_head");
  const std::size_t Vu = static_cast<std::size_t>(V);
  CUDA_CHECK(kernels::cast(t, logits_.get(), DType::fp32, logits32_.get(), Tu * Vu, stream));
  CUDA_CHECK(kernels::softmax_cross_entropy(DType::fp32, logits32_.get(), nullptr, targets, losses_.as<float>(), Tu, Vu,
                                            Vu, 0.0f, stream));
  CUDA_CHECK(kernels::mean_loss(losses_.as<float>(), Tu, loss_.as<float>(), stream));
  marks.mark("fwd_loss");
}

void Gpt2Step::eager_backward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks) {
  const DType t = c_.dtype;
  const long T = lay_.T, d = lay_.d, ff = lay_.ff, V = lay_.V, L = lay_.L;
  const std::size_t td = lay_.td(), tf = static_cast<std::size_t>(T) * ff, Tu = static_cast<std::size_t>(T);
  const std::size_t du = static_cast<std::size_t>(d), Vu = static_cast<std::size_t>(V);
  const kernels::AttentionDims dims = lay_.attention_dims();
  void* ln_ws = ln_ws_.get();
  PhaseMarks quiet;

  // d loss / d logit = (S/T) (softmax − onehot) in fp32, cast back to the logits' dtype (autocast's
  // cast backward), over the logits themselves.
  const float scale = static_cast<float>(grad_scale_ / static_cast<double>(T));
  CUDA_CHECK(kernels::softmax_cross_entropy(DType::fp32, logits32_.get(), logits32_.get(), targets, losses_.as<float>(),
                                            Tu, Vu, Vu, scale, stream));
  CUDA_CHECK(kernels::cast(DType::fp32, logits32_.get(), t, logits_.get(), Tu * Vu, stream));
  marks.mark("bwd_loss");
  head_backward(V, stream, marks);
  for (long l = L - 1; l >= 0; --l) {
    const BlockSlots& k = lay_.blocks[static_cast<std::size_t>(l)];
    const LayerPtrs p = layer(l);
    // ds holds the gradient of s_{l+1} = mid + mlp: that of the MLP's output and (below) of mid.
    linear_backward(t, ds_.get(), p.a, w(k.w_proj), g(k.w_proj), g(k.b_proj), d4_.get(), T, ff, d, stream);
    marks.mark("bwd_mlp_down");
    CUDA_CHECK(kernels::activation_backward(t, kernels::Activation::gelu, d4_.get(), p.pre, d4_.get(), tf, stream));
    marks.mark("bwd_activation");
    linear_backward(t, d4_.get(), p.c, w(k.w_fc), g(k.w_fc), g(k.b_fc), dtmp_.get(), T, d, ff, stream);
    marks.mark("bwd_mlp_up");
    CUDA_CHECK(kernels::layernorm_backward(t, dtmp_.get(), p.mid, w(k.ln2_g), mean_at(2 * l + 1), rstd_at(2 * l + 1),
                                           nullptr, dtmp_.get(), g(k.ln2_g), g(k.ln2_b), false, ln_ws, Tu, du, stream));
    marks.mark("bwd_norm");
    CUDA_CHECK(kernels::residual_add(t, ds_.get(), dtmp_.get(), ds_.get(), td, stream));  // d mid
    marks.mark("bwd_residual");
    linear_backward(t, ds_.get(), p.y, w(k.w_o), g(k.w_o), g(k.b_o), dtmp_.get(), T, d, d, stream);
    marks.mark("bwd_out_proj");
    CUDA_CHECK(kernels::split_heads(t, dtmp_.get(), dout_heads_.get(), lay_.heads(1), stream));
    const UnfusedScratch scratch{scores_.get(), p.probs, attn_lse_.as<float>(), row_dot_.as<float>()};
    char* dq = dheads_.as<char>();
    const std::size_t e = dtype_bytes(t);
    unfused_attention_backward(t, p.q, p.k, p.v, p.o, dout_heads_.get(), dq, dq + td * e, dq + 2 * td * e, scratch,
                               dims, stream, quiet);
    CUDA_CHECK(kernels::merge_heads(t, dq, dqkv_.get(), lay_.heads(3), stream));
    marks.mark("bwd_attention");
    linear_backward(t, dqkv_.get(), p.h, w(k.w_qkv), g(k.w_qkv), g(k.b_qkv), dtmp_.get(), T, d, 3 * d, stream);
    marks.mark("bwd_qkv");
    CUDA_CHECK(kernels::layernorm_backward(t, dtmp_.get(), p.s_in, w(k.ln1_g), mean_at(2 * l), rstd_at(2 * l), nullptr,
                                           dtmp_.get(), g(k.ln1_g), g(k.ln1_b), false, ln_ws, Tu, du, stream));
    marks.mark("bwd_norm");
    CUDA_CHECK(kernels::residual_add(t, ds_.get(), dtmp_.get(), ds_.get(), td, stream));  // d s_l
    marks.mark("bwd_residual");
  }
  CUDA_CHECK(cudaMemsetAsync(g(lay_.wpe), 0, static_cast<std::size_t>(lay_.s) * du * sizeof(float), stream));
  CUDA_CHECK(kernels::embedding_backward(t, tokens, ds_.get(), g(lay_.wte), g(lay_.wpe), Tu,
                                         static_cast<std::size_t>(lay_.s), Vu, du, emb_ws_.get(), emb_ws_bytes_,
                                         stream));
  marks.mark("bwd_embedding");
}

}  // namespace wflops::model_step_detail
