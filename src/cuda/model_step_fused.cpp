// The fused attention engine both architectures' fused steps run (FusedAttention), and the fused
// GPT-2 step (model_step_impl.hpp; docs/model-kernels.md, "How a GPT-2 step strings them
// together"):
//   embedding_forward; block 0's LN1 as a plain LayerNorm;
//   per block: QKV GEMM with a BIAS epilogue; split heads, fused attention (cuDNN's SDPA where it
//   builds, else our FlashAttention-2), merge heads; output GEMM (BIAS); residual add + LN2 in one
//   kernel; fc GEMM with GELU_AUX_BIAS (the pre-activation kept as aux for the backward); proj GEMM
//   (BIAS); residual add + the next LN1 (or LN_f) in one kernel;
//   LM head GEMM over the vocabulary padded to Vp (wte's padding rows are zero), then the fused
//   softmax + cross-entropy on the 16-bit logits (no fp32 copy): the loss in the forward, and at
//   the start of the backward the same kernel again writing the gradient over the logits. One
//   pass could write both, a read of the logits less (0.8 GB at the reference shape, about 1% of
//   the step), but its whole time would then fall in fwd_loss and bwd_loss would be empty; two
//   passes keep each phase to the work its byte count (src/model/model_bytes.hpp) describes;
//   backward in reverse: weight gradients in fp32 by cublasGemmEx; the proj layer's input
//   gradient with DGELU_BGRAD (dGELU and the fc bias gradient in its epilogue, 16-bit, then cast to
//   the fp32 gradient); the other biases' gradients by our bias_grad kernel (a BGRADB epilogue on
//   the weight-gradient GEMM would need an fp32 D beside 16-bit A and B, and LtGemm plans one
//   dtype for all four); LayerNorm backward kernels that add the residual gradient in place; the
//   embedding's scatter-add; one multi-tensor AdamW that also writes the compute copies for the
//   next step.
// Phases folded into others as model_phases::fused_into says: fwd_residual in fwd_norm,
// bwd_residual in bwd_norm, fwd_activation in fwd_mlp_up, bwd_activation in bwd_mlp_down.
#include <fmt/core.h>

#include <algorithm>
#include <stdexcept>

#include "attention/flash_attention_bwd.cuh"
#include "attention/flash_attention_fwd.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/cudnn_sdpa.hpp"
#include "cuda/model_step_impl.hpp"
#include "elementwise/bias_grad.cuh"
#include "elementwise/cast.cuh"
#include "model/head_layout.cuh"
#include "model/layernorm_residual.cuh"

namespace wflops::model_step_detail {

namespace {}  // namespace

FusedAttention::FusedAttention() = default;
FusedAttention::~FusedAttention() = default;

std::size_t FusedAttention::workspace_estimate(const kernels::AttentionDims& dims) {
  return std::max(kernels::flash_attention_backward_workspace_bytes(dims), cudnn::SdpaBackward::scratch_bytes(dims));
}

void FusedAttention::choose(DType dtype, const kernels::AttentionDims& dims, bool force_flash) {
  dtype_ = dtype;
  dims_ = dims;
  std::string cudnn_why =
      force_flash ? "forced off by the configuration (tests)" : cudnn::sdpa_unsupported_reason(dtype, dims);
  if (cudnn_why.empty()) {
    try {
      fwd_ = std::make_unique<cudnn::SdpaForward>(dtype, dims);
      bwd_ = std::make_unique<cudnn::SdpaBackward>(dtype, dims);
      workspace_ = DeviceBuffer(std::max(fwd_->workspace_bytes(), bwd_->workspace_bytes()));
      engine_ = fmt::format("cuDNN SDPA attention (forward {}; backward {})", fwd_->describe(), bwd_->describe());
      return;
    } catch (const std::exception& e) {
      // cuDNN missing on this machine, or no engine for the shape: our kernels instead.
      cudnn_why = e.what();
      fwd_.reset();
      bwd_.reset();
    }
  }
  const std::string flash_why = kernels::flash_attention_unsupported_reason(dtype, dims);
  if (!flash_why.empty()) {
    throw std::runtime_error(
        fmt::format("the fused step has no attention for this shape: cuDNN: {}; ours: {}", cudnn_why, flash_why));
  }
  workspace_ = DeviceBuffer(kernels::flash_attention_backward_workspace_bytes(dims));
  engine_ = fmt::format("our FlashAttention-2 attention (cuDNN not used: {})", cudnn_why);
}

void FusedAttention::forward(const void* q, const void* k, const void* v, void* o, float* lse,
                             cudaStream_t stream) const {
  if (fwd_) {
    fwd_->run(stream, q, k, v, o, lse, workspace_.get());
  } else {
    CUDA_CHECK(kernels::flash_attention_forward(dtype_, q, k, v, o, lse, dims_, stream));
  }
}

void FusedAttention::backward(const void* q, const void* k, const void* v, const void* o, const float* lse,
                              const void* d_o, void* dqkv, cudaStream_t stream) const {
  char* dq = static_cast<char*>(dqkv);
  const std::size_t bytes = static_cast<std::size_t>(dims_.rows() * dims_.head_dim) * dtype_bytes(dtype_);
  if (bwd_) {
    bwd_->run(stream, q, k, v, o, lse, d_o, dq, dq + bytes, dq + 2 * bytes, workspace_.get());
  } else {
    CUDA_CHECK(kernels::flash_attention_backward(dtype_, q, k, v, o, d_o, lse, dq, dq + bytes, dq + 2 * bytes,
                                                 workspace_.get(), dims_, stream));
  }
}

void Gpt2Step::plan_fused() {
  const DType t = c_.dtype;
  const long T = lay_.T, d = lay_.d, ff = lay_.ff;
  plans_.clear();
  for (long l = 0; l < lay_.L; ++l) {
    const BlockSlots& k = lay_.blocks[static_cast<std::size_t>(l)];
    const LayerPtrs p = layer(l);
    auto plan = std::make_unique<LayerPlans>();
    // out [T, n] = x [T, k] W^T with the epilogue's bias (and aux): one per forward linear layer.
    auto forward = [&](LtGemm& gemm, long n, long k_in, cublasLtEpilogue_t epilogue, const void* bias, void* aux,
                       const char* what) {
      gemm.plan({{false, true, T, n, k_in}, t, epilogue, bias, aux, aux ? aux_ld_ : 0, what});
    };
    forward(plan->qkv, 3 * d, d, CUBLASLT_EPILOGUE_BIAS, w(k.b_qkv), nullptr, "model step QKV h W_qkv^T + b_qkv");
    forward(plan->out_proj, d, d, CUBLASLT_EPILOGUE_BIAS, w(k.b_o), nullptr, "model step output y W_o^T + b_o");
    forward(plan->fc, ff, d, CUBLASLT_EPILOGUE_GELU_AUX_BIAS, w(k.b_fc), p.pre, "model step gelu(c W_fc^T + b_fc)");
    forward(plan->proj, d, ff, CUBLASLT_EPILOGUE_BIAS, w(k.b_proj), nullptr, "model step MLP a W_proj^T + b_proj");
    // d4 = (ds W_proj) * gelu'(pre); the fc bias gradient (column sums of d4 over the tokens) into
    // a 16-bit scratch, cast to the fp32 gradient afterwards.
    plan->dfc.plan({{false, false, T, ff, d},
                    t,
                    CUBLASLT_EPILOGUE_DGELU_BGRAD,
                    db_fc_.get(),
                    p.pre,
                    aux_ld_,
                    "model step MLP input gradient (ds W_proj) gelu'(pre) with db_fc"});
    plans_.push_back(std::move(plan));
  }
}

void Gpt2Step::fused_forward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks) {
  const DType t = c_.dtype;
  const long T = lay_.T, d = lay_.d, L = lay_.L;
  const std::size_t Tu = static_cast<std::size_t>(T), du = static_cast<std::size_t>(d);
  embedding_forward(tokens, lay_.wte, w(lay_.wpe), stream_at(0), stream, marks);
  const BlockSlots& first = lay_.blocks[0];
  CUDA_CHECK(kernels::residual_layernorm_forward(t, stream_at(0), nullptr, nullptr, w(first.ln1_g), w(first.ln1_b),
                                                 layer(0).h, mean_at(0), rstd_at(0), Tu, du, kLnEps, stream));
  marks.mark("fwd_norm");
  for (long l = 0; l < L; ++l) {
    const BlockSlots& k = lay_.blocks[static_cast<std::size_t>(l)];
    const LayerPtrs p = layer(l);
    const LayerPlans& plan = *plans_[static_cast<std::size_t>(l)];
    plan.qkv.run(p.h, w(k.w_qkv), nullptr, qkv_.get(), 0.0f, stream);
    marks.mark("fwd_qkv");
    CUDA_CHECK(kernels::split_heads(t, qkv_.get(), p.q, lay_.heads(3), stream));
    attention_forward(p, stream);
    CUDA_CHECK(kernels::merge_heads(t, p.o, p.y, lay_.heads(1), stream));
    marks.mark("fwd_attention");
    plan.out_proj.run(p.y, w(k.w_o), nullptr, branch_.get(), 0.0f, stream);
    marks.mark("fwd_out_proj");
    // mid = s_l + attention branch; c = LN2(mid).
    CUDA_CHECK(kernels::residual_layernorm_forward(t, p.s_in, branch_.get(), p.mid, w(k.ln2_g), w(k.ln2_b), p.c,
                                                   mean_at(2 * l + 1), rstd_at(2 * l + 1), Tu, du, kLnEps, stream));
    marks.mark("fwd_norm");
    plan.fc.run(p.c, w(k.w_fc), nullptr, p.a, 0.0f, stream);
    marks.mark("fwd_mlp_up");
    plan.proj.run(p.a, w(k.w_proj), nullptr, branch_.get(), 0.0f, stream);
    marks.mark("fwd_mlp_down");
    // s_{l+1} = mid + MLP branch, normalised by the next block's LN1 or by LN_f.
    const bool last = l + 1 == L;
    const BlockSlots* next = last ? nullptr : &lay_.blocks[static_cast<std::size_t>(l + 1)];
    CUDA_CHECK(kernels::residual_layernorm_forward(t, p.mid, branch_.get(), p.s_out, w(last ? lay_.lnf_g : next->ln1_g),
                                                   w(last ? lay_.lnf_b : next->ln1_b), last ? z_.get() : layer(l + 1).h,
                                                   mean_at(2 * (l + 1)), rstd_at(2 * (l + 1)), Tu, du, kLnEps, stream));
    marks.mark("fwd_norm");
  }
  head_forward(z_.get(), lay_.wte, targets, stream, marks);  // over Vp columns: wte's padding rows are 0
}

void Gpt2Step::fused_backward(const int* tokens, cudaStream_t stream, PhaseMarks& marks) {
  const DType t = c_.dtype;
  const long T = lay_.T, d = lay_.d, ff = lay_.ff, L = lay_.L;
  const std::size_t Tu = static_cast<std::size_t>(T), du = static_cast<std::size_t>(d);
  void* ln_ws = ln_ws_.get();
  for (long l = L - 1; l >= 0; --l) {
    const BlockSlots& k = lay_.blocks[static_cast<std::size_t>(l)];
    const LayerPtrs p = layer(l);
    const LayerPlans& plan = *plans_[static_cast<std::size_t>(l)];
    // ds: the gradient of s_{l+1}, so of the MLP's output.
    gemm_rm({true, false, d, ff, T}, t, ds_.get(), p.a, DType::fp32, g(k.w_proj), 0.0f, stream);  // ds^T a
    CUDA_CHECK(kernels::bias_grad(t, ds_.get(), DType::fp32, g(k.b_proj), T, d, stream));
    plan.dfc.run(ds_.get(), w(k.w_proj), nullptr, d4_.get(), 0.0f, stream);
    marks.mark("bwd_mlp_down");
    CUDA_CHECK(kernels::cast(t, db_fc_.get(), DType::fp32, g(k.b_fc), static_cast<std::size_t>(ff), stream));
    gemm_rm({true, false, ff, d, T}, t, d4_.get(), p.c, DType::fp32, g(k.w_fc), 0.0f, stream);  // d4^T c
    gemm_rm({false, false, T, d, ff}, t, d4_.get(), w(k.w_fc), t, dtmp_.get(), 0.0f, stream);   // dc = d4 W_fc
    marks.mark("bwd_mlp_up");
    // d mid = ds + LN2's backward of dc, in place in ds.
    CUDA_CHECK(kernels::layernorm_backward(t, dtmp_.get(), p.mid, w(k.ln2_g), mean_at(2 * l + 1), rstd_at(2 * l + 1),
                                           ds_.get(), ds_.get(), g(k.ln2_g), g(k.ln2_b), false, ln_ws, Tu, du, stream));
    marks.mark("bwd_norm");
    linear_backward(t, ds_.get(), p.y, w(k.w_o), g(k.w_o), g(k.b_o), dtmp_.get(), T, d, d, stream);  // dy = ds W_o
    marks.mark("bwd_out_proj");
    CUDA_CHECK(kernels::split_heads(t, dtmp_.get(), dout_heads_.get(), lay_.heads(1), stream));
    attention_backward(p, stream);
    CUDA_CHECK(kernels::merge_heads(t, dheads_.get(), dqkv_.get(), lay_.heads(3), stream));
    marks.mark("bwd_attention");
    linear_backward(t, dqkv_.get(), p.h, w(k.w_qkv), g(k.w_qkv), g(k.b_qkv), dtmp_.get(), T, d, 3 * d, stream);  // dh
    marks.mark("bwd_qkv");
    // d s_l = d mid + LN1's backward of dh, in place in ds.
    CUDA_CHECK(kernels::layernorm_backward(t, dtmp_.get(), p.s_in, w(k.ln1_g), mean_at(2 * l), rstd_at(2 * l),
                                           ds_.get(), ds_.get(), g(k.ln1_g), g(k.ln1_b), false, ln_ws, Tu, du, stream));
    marks.mark("bwd_norm");
  }
  embedding_backward(tokens, ds_.get(), lay_.wte, g(lay_.wpe), stream, marks);  // onto the LM head's dwte
}

}  // namespace wflops::model_step_detail
