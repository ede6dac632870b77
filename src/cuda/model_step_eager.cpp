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
#include "cuda/cuda_check.hpp"
#include "cuda/model_step_impl.hpp"
#include "elementwise/activation.cuh"
#include "elementwise/bias_add.cuh"
#include "elementwise/bias_grad.cuh"
#include "elementwise/residual_add.cuh"
#include "model/head_layout.cuh"
#include "model/layernorm_residual.cuh"

namespace wflops::model_step_detail {

namespace {

// y [T, out] = x [T, in] W^T (+ bias as its own pass).
void linear_forward(DType t, const void* x, const void* weight, const void* bias, void* y, long T, long in, long out,
                    cudaStream_t stream) {
  gemm_rm({false, true, T, out, in}, t, x, weight, t, y, 0.0f, stream);
  CUDA_CHECK(kernels::bias_add(t, y, bias, y, T, out, stream));
}

}  // namespace

void linear_backward(DType t, const void* dy, const void* x, const void* weight, float* dweight, float* dbias, void* dx,
                     long T, long in, long out, cudaStream_t stream) {
  gemm_rm({true, false, out, in, T}, t, dy, x, DType::fp32, dweight, 0.0f, stream);
  CUDA_CHECK(kernels::bias_grad(t, dy, DType::fp32, dbias, T, out, stream));
  gemm_rm({false, false, T, in, out}, t, dy, weight, t, dx, 0.0f, stream);
}

void Gpt2Step::eager_forward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks) {
  const DType t = c_.dtype;
  const long T = lay_.T, d = lay_.d, ff = lay_.ff;
  const std::size_t td = lay_.td(), tf = static_cast<std::size_t>(T) * ff, Tu = static_cast<std::size_t>(T);
  const std::size_t du = static_cast<std::size_t>(d);

  write_copies(stream);  // autocast's casts of the fp32 weights, booked to the optimizer (model_phases.hpp)
  marks.mark("optimizer");
  embedding_forward(tokens, lay_.wte, w(lay_.wpe), stream_at(0), stream, marks);
  for (long l = 0; l < lay_.L; ++l) {
    const BlockSlots& k = lay_.blocks[static_cast<std::size_t>(l)];
    const LayerPtrs p = layer(l);
    CUDA_CHECK(kernels::residual_layernorm_forward(t, p.s_in, nullptr, nullptr, w(k.ln1_g), w(k.ln1_b), p.h,
                                                   mean_at(2 * l), rstd_at(2 * l), Tu, du, kLnEps, stream));
    marks.mark("fwd_norm");
    linear_forward(t, p.h, w(k.w_qkv), w(k.b_qkv), qkv_.get(), T, d, 3 * d, stream);
    marks.mark("fwd_qkv");
    CUDA_CHECK(kernels::split_heads(t, qkv_.get(), p.q, lay_.heads(3), stream));
    attention_forward(p, stream);
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
  head_forward(z_.get(), lay_.wte, targets, stream, marks);  // the tied wte, the real V columns
}

void Gpt2Step::eager_backward(const int* tokens, cudaStream_t stream, PhaseMarks& marks) {
  const DType t = c_.dtype;
  const long T = lay_.T, d = lay_.d, ff = lay_.ff, L = lay_.L;
  const std::size_t td = lay_.td(), tf = static_cast<std::size_t>(T) * ff, Tu = static_cast<std::size_t>(T);
  const std::size_t du = static_cast<std::size_t>(d);
  void* ln_ws = ln_ws_.get();

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
    attention_backward(p, stream);
    CUDA_CHECK(kernels::merge_heads(t, dheads_.get(), dqkv_.get(), lay_.heads(3), stream));
    marks.mark("bwd_attention");
    linear_backward(t, dqkv_.get(), p.h, w(k.w_qkv), g(k.w_qkv), g(k.b_qkv), dtmp_.get(), T, d, 3 * d, stream);
    marks.mark("bwd_qkv");
    CUDA_CHECK(kernels::layernorm_backward(t, dtmp_.get(), p.s_in, w(k.ln1_g), mean_at(2 * l), rstd_at(2 * l), nullptr,
                                           dtmp_.get(), g(k.ln1_g), g(k.ln1_b), false, ln_ws, Tu, du, stream));
    marks.mark("bwd_norm");
    CUDA_CHECK(kernels::residual_add(t, ds_.get(), dtmp_.get(), ds_.get(), td, stream));  // d s_l
    marks.mark("bwd_residual");
  }
  embedding_backward(tokens, ds_.get(), lay_.wte, g(lay_.wpe), stream, marks);  // onto the LM head's dwte
}

}  // namespace wflops::model_step_detail
