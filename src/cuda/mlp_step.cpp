#include "cuda/mlp_step.hpp"

#include <fmt/core.h>

#include <climits>
#include <functional>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "common/fill_random.cuh"
#include "cuda/blas_handles.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/mlp_check.hpp"
#include "cuda/mlp_gemm.hpp"
#include "cuda/rotated_inputs.hpp"
#include "elementwise/activation.cuh"
#include "elementwise/adamw.cuh"
#include "elementwise/bias_add.cuh"
#include "elementwise/bias_grad.cuh"
#include "elementwise/cast.cuh"
#include "elementwise/residual_add.cuh"
#include "elementwise/swiglu.cuh"

namespace wflops {

namespace {

using kernels::Activation;

// The parameters live in one buffer, [W1 | W2 | b1 | b2], each region starting on a 256-byte
// boundary (64 elements), so that mixed precision casts and updates all of them in one pass each.
// W1 has w1_rows rows: d_ff, or 2 d_ff for the gated MLP (gate and up stacked).
struct ParamLayout {
  std::size_t w1 = 0, w2 = 0, b1 = 0, b2 = 0, total = 0;  // element offsets, total with padding
  ParamLayout(long d, long d_ff, long w1_rows, bool bias) {
    const std::size_t w = static_cast<std::size_t>(d) * d_ff;
    w2 = align_up(static_cast<std::size_t>(w1_rows) * d, 64);
    b1 = w2 + align_up(w, 64);
    b2 = b1 + (bias ? align_up(d_ff, 64) : 0);
    total = b2 + (bias ? align_up(d, 64) : 0);
  }
};

char* at(const DeviceBuffer& b, std::size_t elements, DType t) { return b.as<char>() + elements * dtype_bytes(t); }

// Called by verify() between the step and the check, with the step's input x (set 0); production
// workloads have none. The test seam that sets one is declared in tests/gpu/mlp_step_seam.hpp.
using AfterVerifiedStep = std::function<void(void* x, std::size_t elements, cudaStream_t stream)>;

class MlpStepWorkload final : public Workload {
 public:
  MlpStepWorkload(MlpConfig c, AfterVerifiedStep after_step)
      : c_(std::move(c)),
        after_step_(std::move(after_step)),
        v_(c_.variant),
        w1_rows_(v_.gated ? 2 * c_.d_ff : c_.d_ff),
        layout_(c_.d, c_.d_ff, w1_rows_, v_.bias),
        grad_dtype_(v_.mixed ? DType::fp32 : c_.dtype) {
    const std::size_t e = dtype_bytes(c_.dtype);
    td_ = static_cast<std::size_t>(c_.tokens) * c_.d;
    tf_ = static_cast<std::size_t>(c_.tokens) * c_.d_ff;
    th_ = static_cast<std::size_t>(c_.tokens) * w1_rows_;
    x_ = inputs_.add("x", c_.dtype, td_);
    if (!c_.forward_only) dy_ = inputs_.add("dy", c_.dtype, td_);
    relu_aux_ = v_.fused && v_.act == Activation::relu;
    if (v_.fused) aux_ld_ = lt_aux_ld(relu_aux_, c_.d_ff);
    // h: the pre-activation (unfused; the fused GELU aux; gated [g | u]), or the ReLU bitmask (bits,
    // whole bytes).
    h_bytes_ = v_.fused ? (relu_aux_ ? static_cast<std::size_t>(c_.tokens) * aux_ld_ / 8
                                     : static_cast<std::size_t>(c_.tokens) * aux_ld_ * e)
                        : th_ * e;
  }

  // One set as it lies in memory, its padding included.
  double input_bytes() const override { return static_cast<double>(inputs_.set_bytes()); }

  double device_bytes(int sets) const override {
    return inputs_.device_bytes(sets) + static_cast<double>(fixed_bytes());
  }

  void allocate(int sets, cudaStream_t stream) override {
    throw_if_unsupported(mlp_unsupported_reason(c_));
    const std::size_t e = dtype_bytes(c_.dtype);
    inputs_.allocate(sets);
    params_ = DeviceBuffer(layout_.total * e);
    h_ = DeviceBuffer(h_bytes_);
    if (has_separate_activation()) a_ = DeviceBuffer(tf_ * e);
    if (gated_unfused()) silu_ = DeviceBuffer(tf_ * e);
    y_ = DeviceBuffer(td_ * e);
    if (!c_.forward_only) {
      dh_ = DeviceBuffer(th_ * e);
      if (v_.gated) gated_da_ = DeviceBuffer(tf_ * e);
      if (gated_unfused()) da_u_ = DeviceBuffer(tf_ * e);
      dx_ = DeviceBuffer(td_ * e);
      grads_ = DeviceBuffer(layout_.total * dtype_bytes(grad_dtype_));
      CUDA_CHECK(cudaMemsetAsync(grads_.get(), 0, grads_.bytes(), stream));  // padding stays finite
    }
    if (v_.mixed) {
      master_ = DeviceBuffer(layout_.total * sizeof(float));
      m_ = DeviceBuffer(layout_.total * sizeof(float));
      v2_ = DeviceBuffer(layout_.total * sizeof(float));
    }
    fill_inputs(sets, stream);
    if (v_.fused) plan_fused();
    CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  Verification verify(cudaStream_t stream) override {
    fill_inputs(1, stream);
    poison(stream);
    step_ = 0;
    MasterSample masters;
    if (v_.mixed) {
      CUDA_CHECK(cudaStreamSynchronize(stream));
      masters = sample_masters(master_.as<float>(), param_regions(), 6);
    }
    launch(stream, 0);
    if (after_step_) after_step_(x(0), td_, stream);
    CUDA_CHECK(cudaStreamSynchronize(stream));
    MlpDeviceView view;
    view.config = c_;
    view.x = x(0);
    view.dy = c_.forward_only ? nullptr : dy(0);
    view.w1 = param(layout_.w1);
    view.w2 = param(layout_.w2);
    view.b1 = v_.bias ? param(layout_.b1) : nullptr;
    view.b2 = v_.bias ? param(layout_.b2) : nullptr;
    view.y = y_.get();
    view.dh = dh_.get();
    view.dx = dx_.get();
    view.grad_dtype = grad_dtype_;
    if (!c_.forward_only) {
      view.dw1 = grad(layout_.w1);
      view.dw2 = grad(layout_.w2);
      view.db1 = v_.bias ? grad(layout_.b1) : nullptr;
      view.db2 = v_.bias ? grad(layout_.b2) : nullptr;
    }
    Verification result = check_mlp_step(view, stream);
    if (result.ok && v_.mixed && !c_.forward_only) {
      const Verification update = check_master_update(masters, adamw_, c_.dtype, params_.get(), master_.as<float>(),
                                                      m_.as<float>(), v2_.as<float>(), grads_.as<float>());
      result.ok = update.ok;
      result.detail += "; " + update.detail;
    }
    return result;
  }

  void launch(cudaStream_t stream, int set) override {
    PhaseMarks none;
    launch_marked(stream, set, none);
  }

  bool has_phases() const override { return true; }

  void launch_marked(cudaStream_t stream, int set, PhaseMarks& marks) override {
    if (v_.mixed) {
      // fp32 masters -> the GEMMs' weights, every step.
      CUDA_CHECK(kernels::cast(DType::fp32, master_.get(), c_.dtype, params_.get(), layout_.total, stream));
      marks.mark("cast");
    }
    if (v_.gated) {
      forward_gated(stream, set, marks);
      if (!c_.forward_only) backward_gated(stream, set, marks);
    } else if (v_.fused) {
      forward_fused(stream, set, marks);
      if (!c_.forward_only) backward_fused(stream, set, marks);
    } else {
      forward_unfused(stream, set, marks);
      if (!c_.forward_only) backward_unfused(stream, set, marks);
    }
    if (v_.mixed && !c_.forward_only) {
      CUDA_CHECK(kernels::adamw_step(adamw_, ++step_, master_.as<float>(), grads_.as<float>(), m_.as<float>(),
                                     v2_.as<float>(), layout_.total, stream));
      marks.mark("optimizer");
    }
  }

  std::string describe() const override {
    if (v_.gated) {
      return std::string("cuBLAS cublasGemmEx (default algorithm), ") +
             (v_.gate_fused ? "our fused SwiGLU kernels" : "eager's separate silu / multiply passes");
    }
    if (!v_.fused) return "cuBLAS cublasGemmEx (default algorithm)";
    return "cuBLASLt epilogues, the heuristic's first algorithm for each GEMM";
  }

 private:
  // Linear: a = h, no second buffer.
  bool has_separate_activation() const { return v_.act != Activation::none || v_.bias || v_.gated; }
  bool gated_unfused() const { return v_.gated && !v_.gate_fused; }

  std::size_t fixed_bytes() const {
    const std::size_t e = dtype_bytes(c_.dtype);
    std::size_t bytes = layout_.total * e + h_bytes_ + td_ * e + kBlasWorkspaceBytes;
    if (has_separate_activation()) bytes += tf_ * e;
    if (gated_unfused()) bytes += tf_ * e;  // silu(g)
    if (!c_.forward_only) bytes += th_ * e + td_ * e + layout_.total * dtype_bytes(grad_dtype_);
    if (!c_.forward_only && v_.gated) bytes += tf_ * e * (gated_unfused() ? 2 : 1);  // da (and da * u)
    if (v_.mixed) bytes += 3 * layout_.total * sizeof(float);
    return bytes;
  }

  void* x(int set) const { return inputs_.ptr(x_, set); }
  void* dy(int set) const { return inputs_.ptr(dy_, set); }
  void* param(std::size_t offset) const { return at(params_, offset, c_.dtype); }
  void* grad(std::size_t offset) const { return at(grads_, offset, grad_dtype_); }
  void* activation_out() const { return has_separate_activation() ? a_.get() : h_.get(); }

  std::vector<std::pair<std::size_t, std::size_t>> param_regions() const {
    const std::size_t w = static_cast<std::size_t>(c_.d) * c_.d_ff;
    const std::size_t w1 = static_cast<std::size_t>(w1_rows_) * c_.d;
    std::vector<std::pair<std::size_t, std::size_t>> r = {{layout_.w1, w1}, {layout_.w2, w}};
    if (v_.bias) {
      r.push_back({layout_.b1, static_cast<std::size_t>(c_.d_ff)});
      r.push_back({layout_.b2, static_cast<std::size_t>(c_.d)});
    }
    return r;
  }

  // Random x and dy in the first `sets` input sets, random weights and biases (fp32 masters with
  // zero AdamW moments for mixed precision).
  void fill_inputs(int sets, cudaStream_t stream) {
    for (int s = 0; s < sets; ++s) inputs_.fill(s, stream);
    if (v_.mixed) {
      CUDA_CHECK(kernels::fill_random(DType::fp32, master_.get(), layout_.total, fresh_seed(), stream));
      CUDA_CHECK(cudaMemsetAsync(m_.get(), 0, m_.bytes(), stream));
      CUDA_CHECK(cudaMemsetAsync(v2_.get(), 0, v2_.bytes(), stream));
    } else {
      CUDA_CHECK(kernels::fill_random(c_.dtype, params_.get(), layout_.total, fresh_seed(), stream));
    }
  }

  // NaN (all bits set, in every float format) in everything a step must write.
  void poison(cudaStream_t stream) {
    auto nan = [&](const DeviceBuffer& b) {
      if (b.get()) CUDA_CHECK(cudaMemsetAsync(b.get(), 0xFF, b.bytes(), stream));
    };
    nan(y_);
    nan(dh_);
    nan(dx_);
    if (!relu_aux_) nan(h_);  // (a ReLU bitmask has no NaN)
    nan(a_);
    nan(silu_);
    nan(gated_da_);
    nan(da_u_);
    if (v_.mixed) CUDA_CHECK(cudaMemsetAsync(params_.get(), 0xFF, params_.bytes(), stream));
    if (!c_.forward_only) {
      for (const auto& [first, count] : param_regions()) {
        CUDA_CHECK(cudaMemsetAsync(grad(first), 0xFF, count * dtype_bytes(grad_dtype_), stream));
      }
    }
  }

  // ---- unfused: cuBLAS GEMMs, our elementwise kernels between them ----------------------------
  void forward_unfused(cudaStream_t stream, int set, PhaseMarks& marks) {
    const DType t = c_.dtype;
    const long T = c_.tokens, d = c_.d, ff = c_.d_ff;
    gemm_rm({false, true, T, ff, d}, t, x(set), param(layout_.w1), t, h_.get(), 0.0f, stream);  // h = x W1^T
    marks.mark("gemm");
    if (has_separate_activation()) {
      if (v_.bias) CUDA_CHECK(kernels::bias_add(t, h_.get(), param(layout_.b1), h_.get(), T, ff, stream));
      CUDA_CHECK(kernels::activation_forward(t, v_.act, h_.get(), a_.get(), tf_, stream));
      marks.mark("elementwise");
    }
    gemm_rm({false, true, T, d, ff}, t, activation_out(), param(layout_.w2), t, y_.get(), 0.0f, stream);  // a W2^T
    marks.mark("gemm");
    if (v_.bias || v_.residual) {
      if (v_.bias) CUDA_CHECK(kernels::bias_add(t, y_.get(), param(layout_.b2), y_.get(), T, d, stream));
      if (v_.residual) CUDA_CHECK(kernels::residual_add(t, y_.get(), x(set), y_.get(), td_, stream));
      marks.mark("elementwise");
    }
  }

  void backward_unfused(cudaStream_t stream, int set, PhaseMarks& marks) {
    const DType t = c_.dtype, g = grad_dtype_;
    const long T = c_.tokens, d = c_.d, ff = c_.d_ff;
    gemm_rm({true, false, d, ff, T}, t, dy(set), activation_out(), g, grad(layout_.w2), 0.0f, stream);  // dy^T a
    marks.mark("gemm");
    if (v_.bias) {
      CUDA_CHECK(kernels::bias_grad(t, dy(set), g, grad(layout_.b2), T, d, stream));
      marks.mark("elementwise");
    }
    gemm_rm({false, false, T, ff, d}, t, dy(set), param(layout_.w2), t, dh_.get(), 0.0f, stream);  // da = dy W2
    marks.mark("gemm");
    if (v_.act != Activation::none || v_.bias) {
      if (v_.act != Activation::none) {
        CUDA_CHECK(kernels::activation_backward(t, v_.act, dh_.get(), h_.get(), dh_.get(), tf_, stream));
      }
      if (v_.bias) CUDA_CHECK(kernels::bias_grad(t, dh_.get(), g, grad(layout_.b1), T, ff, stream));
      marks.mark("elementwise");
    }
    gemm_rm({true, false, ff, d, T}, t, dh_.get(), x(set), g, grad(layout_.w1), 0.0f, stream);       // dW1 = dh^T x
    gemm_rm({false, false, T, d, ff}, t, dh_.get(), param(layout_.w1), t, dx_.get(), 0.0f, stream);  // dx = dh W1
    marks.mark("gemm");
    if (v_.residual) {
      CUDA_CHECK(kernels::residual_add(t, dx_.get(), dy(set), dx_.get(), td_, stream));
      marks.mark("elementwise");
    }
  }

  // ---- gated (SwiGLU): one GEMM for gate and up, our kernels between the GEMMs ------------------
  // h = [g | u] [T, 2 d_ff]; dh = [dg | du] of the same layout (kernels/elementwise/swiglu.cuh).
  void forward_gated(cudaStream_t stream, int set, PhaseMarks& marks) {
    const DType t = c_.dtype;
    const long T = c_.tokens, d = c_.d, ff = c_.d_ff;
    const std::size_t f = static_cast<std::size_t>(ff), rows = static_cast<std::size_t>(T);
    gemm_rm({false, true, T, 2 * ff, d}, t, x(set), param(layout_.w1), t, h_.get(), 0.0f, stream);  // [g | u]
    marks.mark("gemm");
    if (v_.gate_fused) {
      CUDA_CHECK(kernels::swiglu_forward(t, h_.get(), a_.get(), rows, f, stream));
    } else {  // eager: s = silu(g), then a = s * u
      CUDA_CHECK(kernels::silu_forward_2d(t, h_.get(), 2 * f, silu_.get(), f, rows, f, stream));
      CUDA_CHECK(kernels::multiply_2d(t, silu_.get(), f, up(h_), 2 * f, a_.get(), f, rows, f, stream));
    }
    marks.mark("elementwise");
    gemm_rm({false, true, T, d, ff}, t, a_.get(), param(layout_.w2), t, y_.get(), 0.0f, stream);  // a W2^T
    marks.mark("gemm");
  }

  void backward_gated(cudaStream_t stream, int set, PhaseMarks& marks) {
    const DType t = c_.dtype, g = grad_dtype_;
    const long T = c_.tokens, d = c_.d, ff = c_.d_ff;
    const std::size_t f = static_cast<std::size_t>(ff), rows = static_cast<std::size_t>(T);
    void* da = gated_da_.get();
    gemm_rm({true, false, d, ff, T}, t, dy(set), a_.get(), g, grad(layout_.w2), 0.0f, stream);  // dW2 = dy^T a
    gemm_rm({false, false, T, ff, d}, t, dy(set), param(layout_.w2), t, da, 0.0f, stream);      // da = dy W2
    marks.mark("gemm");
    if (v_.gate_fused) {
      CUDA_CHECK(kernels::swiglu_backward(t, da, h_.get(), dh_.get(), rows, f, stream));
    } else {
      // Eager's multiply backward (da * u, du = da * s), then silu's backward dg = (da * u) silu'(g),
      // each straight into its half of dh (eager's chunk backward would add a concatenating copy).
      CUDA_CHECK(kernels::multiply_2d(t, da, f, up(h_), 2 * f, da_u_.get(), f, rows, f, stream));
      CUDA_CHECK(kernels::multiply_2d(t, da, f, silu_.get(), f, up(dh_), 2 * f, rows, f, stream));
      CUDA_CHECK(kernels::silu_backward_2d(t, da_u_.get(), f, h_.get(), 2 * f, dh_.get(), 2 * f, rows, f, stream));
    }
    marks.mark("elementwise");
    gemm_rm({true, false, 2 * ff, d, T}, t, dh_.get(), x(set), g, grad(layout_.w1), 0.0f, stream);       // dh^T x
    gemm_rm({false, false, T, d, 2 * ff}, t, dh_.get(), param(layout_.w1), t, dx_.get(), 0.0f, stream);  // dh W1
    marks.mark("gemm");
  }

  // The up half of a [T, 2 d_ff] buffer: d_ff elements into its first row.
  void* up(const DeviceBuffer& b) const { return at(b, static_cast<std::size_t>(c_.d_ff), c_.dtype); }

  // ---- fused: cuBLASLt epilogues ---------------------------------------------------------------
  void plan_fused() {
    const DType t = c_.dtype;
    const long T = c_.tokens, d = c_.d, ff = c_.d_ff;
    const bool relu = v_.act == Activation::relu;
    fwd1_.plan({{false, true, T, ff, d},
                t,
                relu ? CUBLASLT_EPILOGUE_RELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX_BIAS,
                param(layout_.b1),
                h_.get(),
                aux_ld_,
                "forward GEMM a = act(x W1^T + b1)"});
    fwd2_.plan({{false, true, T, d, ff},
                t,
                CUBLASLT_EPILOGUE_BIAS,
                param(layout_.b2),
                nullptr,
                0,
                "forward GEMM y = a W2^T + b2 (+ x)"});
    if (c_.forward_only) return;
    // dW2 = dy^T a; its bias gradient db2 = sum over tokens of dy, the reduction over k of
    // cuBLASLt's B operand (our A = dy, see mlp_gemm.hpp): BGRADB.
    dw2_.plan({{true, false, d, ff, T},
               t,
               CUBLASLT_EPILOGUE_BGRADB,
               grad(layout_.b2),
               nullptr,
               0,
               "weight-gradient GEMM dW2 = dy^T a with db2"});
    da_.plan({{false, false, T, ff, d},
              t,
              relu ? CUBLASLT_EPILOGUE_DRELU_BGRAD : CUBLASLT_EPILOGUE_DGELU_BGRAD,
              grad(layout_.b1),
              h_.get(),
              aux_ld_,
              "input-gradient GEMM dh = (dy W2) * act'(h) with db1"});
    dx_plan_.plan({{false, false, T, d, ff},
                   t,
                   CUBLASLT_EPILOGUE_DEFAULT,
                   nullptr,
                   nullptr,
                   0,
                   "input-gradient GEMM dx = dh W1 (+ dy)"});
  }

  void forward_fused(cudaStream_t stream, int set, PhaseMarks& marks) {
    fwd1_.run(x(set), param(layout_.w1), nullptr, a_.get(), 0.0f, stream);
    marks.mark("gemm");
    fwd2_.run(a_.get(), param(layout_.w2), v_.residual ? x(set) : nullptr, y_.get(), 1.0f, stream);
    marks.mark("gemm");
  }

  void backward_fused(cudaStream_t stream, int set, PhaseMarks& marks) {
    const DType t = c_.dtype;
    dw2_.run(dy(set), a_.get(), nullptr, grad(layout_.w2), 0.0f, stream);
    da_.run(dy(set), param(layout_.w2), nullptr, dh_.get(), 0.0f, stream);
    gemm_rm({true, false, c_.d_ff, c_.d, c_.tokens}, t, dh_.get(), x(set), t, grad(layout_.w1), 0.0f, stream);
    dx_plan_.run(dh_.get(), param(layout_.w1), v_.residual ? dy(set) : nullptr, dx_.get(), 1.0f, stream);
    marks.mark("gemm");
  }

  MlpConfig c_;
  AfterVerifiedStep after_step_;
  MlpVariant v_;
  long w1_rows_;
  ParamLayout layout_;
  DType grad_dtype_;
  std::size_t td_ = 0, tf_ = 0, th_ = 0, h_bytes_ = 0;
  bool relu_aux_ = false;
  long aux_ld_ = 0;
  int step_ = 0;
  kernels::AdamW adamw_{};
  RotatedInputs inputs_;  // x and (with a backward) dy, each its own allocation of every set
  RotatedInputs::Id x_, dy_;
  DeviceBuffer params_, h_, a_, y_, dh_, dx_, grads_, master_, m_, v2_;
  DeviceBuffer silu_, gated_da_, da_u_;  // gated: silu(g) (unfused), da = dy W2, da * u (unfused)
  LtGemm fwd1_, fwd2_, dw2_, da_, dx_plan_;
};

MlpVariant variant(const char* word, bool mixed, bool fused, Activation act, bool bias, bool residual) {
  return {word, mixed, fused, act, bias, residual};
}

MlpVariant gated(const char* word, bool gate_fused) {
  MlpVariant v = variant(word, false, false, Activation::none, false, false);
  v.gated = true;
  v.gate_fused = gate_fused;
  return v;
}

}  // namespace

const std::vector<MlpVariant>& mlp_variants() {
  static const std::vector<MlpVariant> all = {
      variant("linear", false, false, Activation::none, false, false),
      variant("mixed_linear", true, false, Activation::none, false, false),
      variant("unfused_relu", false, false, Activation::relu, true, false),
      variant("unfused_gelu", false, false, Activation::gelu, true, false),
      variant("unfused_relu_residual", false, false, Activation::relu, true, true),
      variant("unfused_gelu_residual", false, false, Activation::gelu, true, true),
      variant("fused_relu", false, true, Activation::relu, true, false),
      variant("fused_gelu", false, true, Activation::gelu, true, false),
      variant("fused_relu_residual", false, true, Activation::relu, true, true),
      variant("fused_gelu_residual", false, true, Activation::gelu, true, true),
      variant("mixed_unfused_relu_residual", true, false, Activation::relu, true, true),
      gated("unfused_swiglu", false),
      gated("fused_swiglu", true),
  };
  return all;
}

std::optional<MlpVariant> mlp_variant(const std::string& word) {
  for (const MlpVariant& v : mlp_variants()) {
    if (v.word == word) return v;
  }
  return std::nullopt;
}

std::string mlp_unsupported_reason(const MlpConfig& c) {
  if (c.dtype != DType::fp16 && c.dtype != DType::bf16) {
    return fmt::format("the MLP step runs in fp16 or bf16, not {}", dtype_name(c.dtype));
  }
  if (c.d < 1 || c.d_ff < 1 || c.tokens < 1) {
    return fmt::format("d ({}), d_ff ({}) and tokens ({}) must be positive", c.d, c.d_ff, c.tokens);
  }
  if (c.d > INT_MAX || c.d_ff > INT_MAX || c.tokens > INT_MAX) {
    return fmt::format("d ({}), d_ff ({}) and tokens ({}) must fit cuBLAS's 32-bit dimensions", c.d, c.d_ff, c.tokens);
  }
  if (c.variant.gated && 2 * c.d_ff > INT_MAX) {
    return fmt::format("the gated MLP's 2 d_ff ({}) must fit cuBLAS's 32-bit dimensions", 2 * c.d_ff);
  }
  if (c.variant.gated &&
      (c.variant.fused || c.variant.bias || c.variant.residual || c.variant.act != Activation::none)) {
    return "the gated (SwiGLU) MLP step has no biases, residual, other activation or cuBLASLt epilogues";
  }
  if (c.variant.fused && (!c.variant.bias || c.variant.act == Activation::none)) {
    return "the fused MLP step needs an activation and biases (its epilogues are ACT_AUX_BIAS / DACT_BGRAD)";
  }
  return "";
}

std::unique_ptr<Workload> make_mlp_workload(const MlpConfig& c) {
  return std::make_unique<MlpStepWorkload>(c, nullptr);
}

// The test seam (tests/gpu/mlp_step_seam.hpp); no production header declares it.
std::unique_ptr<Workload> make_mlp_workload(const MlpConfig& c, AfterVerifiedStep after_step) {
  return std::make_unique<MlpStepWorkload>(c, std::move(after_step));
}

}  // namespace wflops
