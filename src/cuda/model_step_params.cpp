// The model step's parameters and buffers (model_step_impl.hpp): the layout of the flat parameter
// buffers, the memory plan, allocation, initialisation, host transfers and AdamW.
//
// Mixed precision as training runs it: fp32 master weights, fp32 gradients, fp32 AdamW moments;
// each step multiplies a bf16/fp16 compute copy of the masters. fp16 also needs a loss scale:
// the cross-entropy's gradient per logit is (softmax − onehot)/T, about 1/(V·T) = 2.4e-9 at
// V = 50257 and T = 8192, below fp16's smallest subnormal (6e-8; kernels/model/cross_entropy.cuh).
// The step scales the loss by S = 8·T, so each logit's gradient is 8·(softmax − onehot): 8/V =
// 1.6e-4 is a normal fp16 number (the smallest is 6.1e-5), and the largest, 8, leaves a factor of
// 8000 below fp16's maximum for the growth through the layers (the LayerNorm backward multiplies
// by rstd, about 1/(0.02·√2) = 35 on GPT-2's initialised residual stream). The fp32 gradients
// then carry S, and the optimizer unscales them exactly without a pass of its own: AdamW's update
// m̂ / (√v̂ + eps) computed on S·g equals the update on g with eps replaced by S·eps (the moments
// scale by S and S²; weight decay does not involve g). bf16 has fp32's range and needs no scale.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "attention/flash_attention_bwd.cuh"
#include "common/fill_random.cuh"
#include "cuda/blas_handles.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/cudnn_sdpa.hpp"
#include "cuda/model_step_impl.hpp"
#include "cuda/rotated_inputs.hpp"
#include "elementwise/cast.cuh"
#include "model/embedding.cuh"
#include "model/layernorm_residual.cuh"
#include "numeric_formats.hpp"

namespace wflops::model_step_detail {

namespace {

constexpr std::size_t kTensorAlign = 64;  // elements: 256 bytes of fp32

// Bytes of one slice of `elements` elements of `bytes` each, padded to the device alignment.
std::size_t slice(std::size_t elements, std::size_t bytes) { return align_up(elements * bytes); }

}  // namespace

long padded_vocab(long vocab) { return (vocab + 63) / 64 * 64; }

Gpt2Layout::Gpt2Layout(const flops::ModelStepShape& m)
    : d(static_cast<long>(m.hidden)),
      L(static_cast<long>(m.layers)),
      h(static_cast<long>(m.heads)),
      hd(h > 0 ? d / h : 0),
      s(static_cast<long>(m.seq)),
      b(static_cast<long>(m.batch)),
      V(static_cast<long>(m.vocab)),
      Vp(padded_vocab(V)),
      ff(4 * d),
      T(b * s) {
  std::size_t at = 0;
  auto add = [&](std::string name, std::size_t count, TensorKind kind, std::size_t region = 0) {
    const std::size_t offset = at;
    tensors.push_back({std::move(name), offset, count, region ? region : count, kind});
    at = align_up(offset + tensors.back().region, kTensorAlign);
    return offset;
  };
  const std::size_t du = static_cast<std::size_t>(d), fu = static_cast<std::size_t>(ff);
  wte = add("wte", static_cast<std::size_t>(V) * du, TensorKind::matrix, static_cast<std::size_t>(Vp) * du);
  wpe = add("wpe", static_cast<std::size_t>(s) * du, TensorKind::matrix);
  for (long l = 0; l < L; ++l) {
    const std::string p = fmt::format("h{}.", l);
    BlockSlots k{};
    k.ln1_g = add(p + "ln1_g", du, TensorKind::gain);
    k.ln1_b = add(p + "ln1_b", du, TensorKind::bias);
    k.w_qkv = add(p + "w_qkv", 3 * du * du, TensorKind::matrix);
    k.b_qkv = add(p + "b_qkv", 3 * du, TensorKind::bias);
    k.w_o = add(p + "w_o", du * du, TensorKind::matrix);
    k.b_o = add(p + "b_o", du, TensorKind::bias);
    k.ln2_g = add(p + "ln2_g", du, TensorKind::gain);
    k.ln2_b = add(p + "ln2_b", du, TensorKind::bias);
    k.w_fc = add(p + "w_fc", fu * du, TensorKind::matrix);
    k.b_fc = add(p + "b_fc", fu, TensorKind::bias);
    k.w_proj = add(p + "w_proj", du * fu, TensorKind::matrix);
    k.b_proj = add(p + "b_proj", du, TensorKind::bias);
    blocks.push_back(k);
  }
  lnf_g = add("lnf_g", du, TensorKind::gain);
  lnf_b = add("lnf_b", du, TensorKind::bias);
  total = at;
}

kernels::AttentionDims Gpt2Layout::attention_dims() const { return {b, h, s, hd, true}; }

kernels::HeadLayout Gpt2Layout::heads(std::size_t n) const {
  return {static_cast<std::size_t>(b), static_cast<std::size_t>(s), static_cast<std::size_t>(h),
          static_cast<std::size_t>(hd), n};
}

model_ref::Gpt2Config Gpt2Layout::reference_config() const {
  return {V, s, d, h, L, b};  // vocab, seq, hidden, heads, layers, batch (GPT-2's ln_eps)
}

Gpt2Step::Gpt2Step(const ModelStepConfig& c, Impl impl) : c_(c), impl_(impl), lay_(c.shape) {
  grad_scale_ = c_.dtype == DType::fp16 ? 8.0 * static_cast<double>(lay_.T) : 1.0;
  aux_ld_ = impl_ == Impl::fused ? lt_aux_ld(false, lay_.ff) : lay_.ff;
  logits_ld_ = impl_ == Impl::fused ? lay_.Vp : lay_.V;
}

Gpt2Step::~Gpt2Step() = default;

std::size_t Gpt2Step::attention_workspace_estimate() const {
  if (impl_ == Impl::eager) return 0;
  const kernels::AttentionDims dims = lay_.attention_dims();
  return std::max(kernels::flash_attention_backward_workspace_bytes(dims), cudnn::SdpaBackward::scratch_bytes(dims));
}

std::size_t Gpt2Step::stat_stride() const { return slice(static_cast<std::size_t>(lay_.T), sizeof(float)); }

BufferSizes Gpt2Step::sizes() const {
  const std::size_t e = dtype_bytes(c_.dtype), f = sizeof(float);
  const std::size_t L = static_cast<std::size_t>(lay_.L), T = static_cast<std::size_t>(lay_.T);
  const std::size_t td = lay_.td(), tf = T * static_cast<std::size_t>(lay_.ff);
  const kernels::AttentionDims dims = lay_.attention_dims();
  const std::size_t rows = static_cast<std::size_t>(dims.rows()), scores = rows * static_cast<std::size_t>(dims.seq);
  BufferSizes z;
  z.params = 4 * lay_.total * f + lay_.total * e;
  // s_0..s_L and z; per layer h, o, y, mid, c, the q/k/v heads, pre, a; the statistics of 2L + 1
  // LayerNorms; eager's P or fused's log-sum-exp per layer.
  z.activations = (L + 2) * slice(td, e) + L * (5 * slice(td, e) + slice(3 * td, e) +
                                                slice(T * static_cast<std::size_t>(aux_ld_), e) + slice(tf, e));
  z.activations += 2 * (2 * L + 1) * stat_stride();
  z.activations += L * (impl_ == Impl::eager ? slice(scores, e) : slice(rows, f));
  // qkv, dqkv, dq/dk/dv heads; branch, ds, dtmp, dO heads; d4; eager's scores, lse and row dots;
  // fused's fc bias gradient in 16 bits.
  z.temps = 3 * slice(3 * td, e) + 4 * slice(td, e) + slice(tf, e);
  z.temps += impl_ == Impl::eager ? slice(scores, e) + 2 * slice(rows, f) : slice(static_cast<std::size_t>(lay_.ff), e);
  z.temps += slice(T, f) + slice(1, f);  // per-token losses, the mean
  z.logits = slice(T * static_cast<std::size_t>(logits_ld_), e);
  if (impl_ == Impl::eager) z.logits += slice(T * static_cast<std::size_t>(lay_.V), f);
  std::size_t emb = 0;
  if (kernels::embedding_backward_workspace_bytes(T, static_cast<std::size_t>(lay_.V), &emb) != cudaSuccess) {
    // No device to ask CUB (a listing on a machine without a GPU): the four id and position arrays
    // and as much again for the sort's own storage.
    (void)cudaGetLastError();
    emb = 8 * align_up(T * sizeof(int));
  }
  z.workspaces = align_up(kernels::layernorm_backward_workspace_bytes(T, static_cast<std::size_t>(lay_.d))) +
                 align_up(emb) + align_up(attention_workspace_estimate());
  z.blas = kBlasWorkspaceBytes;
  return z;
}

void Gpt2Step::allocate(cudaStream_t stream) {
  const std::size_t e = dtype_bytes(c_.dtype), f = sizeof(float);
  const std::size_t L = static_cast<std::size_t>(lay_.L), T = static_cast<std::size_t>(lay_.T);
  const std::size_t td = lay_.td(), tf = T * static_cast<std::size_t>(lay_.ff);
  const kernels::AttentionDims dims = lay_.attention_dims();
  const std::size_t rows = static_cast<std::size_t>(dims.rows()), scores = rows * static_cast<std::size_t>(dims.seq);
  master_ = DeviceBuffer(lay_.total * f);
  grads_ = DeviceBuffer(lay_.total * f);
  m_ = DeviceBuffer(lay_.total * f);
  v_ = DeviceBuffer(lay_.total * f);
  copy_ = DeviceBuffer(lay_.total * e);
  // Padding (between tensors, wte's rows V..Vp-1) stays zero and finite in every buffer.
  for (DeviceBuffer* p : {&master_, &grads_, &m_, &v_, &copy_})
    CUDA_CHECK(cudaMemsetAsync(p->get(), 0, p->bytes(), stream));

  streams_ = DeviceBuffer((L + 1) * slice(td, e));
  for (DeviceBuffer* p : {&h_, &o_, &y_, &mid_, &c_buf_}) *p = DeviceBuffer(L * slice(td, e));
  qkvh_ = DeviceBuffer(L * slice(3 * td, e));
  pre_ = DeviceBuffer(L * slice(T * static_cast<std::size_t>(aux_ld_), e));
  a_ = DeviceBuffer(L * slice(tf, e));
  z_ = DeviceBuffer(slice(td, e));
  mean_ = DeviceBuffer((2 * L + 1) * stat_stride());
  rstd_ = DeviceBuffer((2 * L + 1) * stat_stride());
  if (impl_ == Impl::eager) {
    probs_ = DeviceBuffer(L * slice(scores, e));
    scores_ = DeviceBuffer(slice(scores, e));
    attn_lse_ = DeviceBuffer(slice(rows, f));
    row_dot_ = DeviceBuffer(slice(rows, f));
    logits32_ = DeviceBuffer(slice(T * static_cast<std::size_t>(lay_.V), f));
  } else {
    lse_ = DeviceBuffer(L * slice(rows, f));
    db_fc_ = DeviceBuffer(slice(static_cast<std::size_t>(lay_.ff), e));
  }
  qkv_ = DeviceBuffer(slice(3 * td, e));
  dqkv_ = DeviceBuffer(slice(3 * td, e));
  dheads_ = DeviceBuffer(slice(3 * td, e));
  for (DeviceBuffer* p : {&branch_, &ds_, &dtmp_, &dout_heads_}) *p = DeviceBuffer(slice(td, e));
  d4_ = DeviceBuffer(slice(tf, e));
  logits_ = DeviceBuffer(slice(T * static_cast<std::size_t>(logits_ld_), e));
  losses_ = DeviceBuffer(slice(T, f));
  loss_ = DeviceBuffer(slice(1, f));
  ln_ws_ = DeviceBuffer(kernels::layernorm_backward_workspace_bytes(T, static_cast<std::size_t>(lay_.d)));
  CUDA_CHECK(kernels::embedding_backward_workspace_bytes(T, static_cast<std::size_t>(lay_.V), &emb_ws_bytes_));
  emb_ws_ = DeviceBuffer(emb_ws_bytes_);
  if (impl_ == Impl::fused) {
    choose_fused_attention();
    plan_fused();
  }
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

std::string Gpt2Step::describe() const {
  if (impl_ == Impl::eager) {
    return "eager: cuBLAS cublasGemmEx, one of our kernels per bias, GELU, residual and LayerNorm, unfused "
           "attention over s x s scores, fp32 cross-entropy on a cast of the logits, per-tensor AdamW";
  }
  return "fused: cuBLASLt bias / bias+GELU / dGELU+bias-gradient epilogues, fused residual+LayerNorm, " +
         attention_engine_ + ", fused softmax+cross-entropy on 16-bit logits, one multi-tensor AdamW";
}

void* Gpt2Step::w(std::size_t offset) const { return copy_.as<char>() + offset * dtype_bytes(c_.dtype); }

void* Gpt2Step::act(const DeviceBuffer& b, long layer, std::size_t elements_per_layer) const {
  return b.as<char>() + static_cast<std::size_t>(layer) * slice(elements_per_layer, dtype_bytes(c_.dtype));
}

void* Gpt2Step::stream_at(long l) const { return act(streams_, l, lay_.td()); }

float* Gpt2Step::mean_at(long norm) const {
  return reinterpret_cast<float*>(mean_.as<char>() + static_cast<std::size_t>(norm) * stat_stride());
}

float* Gpt2Step::rstd_at(long norm) const {
  return reinterpret_cast<float*>(rstd_.as<char>() + static_cast<std::size_t>(norm) * stat_stride());
}

Gpt2Step::LayerPtrs Gpt2Step::layer(long l) const {
  const std::size_t td = lay_.td(), T = static_cast<std::size_t>(lay_.T), e = dtype_bytes(c_.dtype);
  const kernels::AttentionDims dims = lay_.attention_dims();
  const std::size_t rows = static_cast<std::size_t>(dims.rows());
  LayerPtrs p{};
  p.s_in = stream_at(l);
  p.s_out = stream_at(l + 1);
  p.h = act(h_, l, td);
  char* qkv = static_cast<char*>(act(qkvh_, l, 3 * td));
  p.q = qkv;
  p.k = qkv + td * e;
  p.v = qkv + 2 * td * e;
  p.o = act(o_, l, td);
  p.y = act(y_, l, td);
  p.mid = act(mid_, l, td);
  p.c = act(c_buf_, l, td);
  p.pre = act(pre_, l, T * static_cast<std::size_t>(aux_ld_));
  p.a = act(a_, l, T * static_cast<std::size_t>(lay_.ff));
  p.probs = probs_.get() ? act(probs_, l, rows * static_cast<std::size_t>(dims.seq)) : nullptr;
  p.lse = lse_.get()
              ? reinterpret_cast<float*>(lse_.as<char>() + static_cast<std::size_t>(l) * slice(rows, sizeof(float)))
              : nullptr;
  return p;
}

void Gpt2Step::write_copies(cudaStream_t stream) {
  CUDA_CHECK(kernels::cast(DType::fp32, master_.get(), c_.dtype, copy_.get(), lay_.total, stream));
}

void Gpt2Step::reset_optimizer(cudaStream_t stream) {
  CUDA_CHECK(cudaMemsetAsync(m_.get(), 0, m_.bytes(), stream));
  CUDA_CHECK(cudaMemsetAsync(v_.get(), 0, v_.bytes(), stream));
  step_ = 0;
}

void Gpt2Step::init_parameters(std::uint64_t seed, float std, cudaStream_t stream) {
  float* master = master_.as<float>();
  CUDA_CHECK(kernels::fill_random(DType::fp32, master, lay_.total, seed, stream));
  // Uniform on [-a, a) has standard deviation a/√3.
  const float scale = std * std::sqrt(3.0f);
  const std::vector<float> ones(static_cast<std::size_t>(lay_.d), 1.0f);
  cublasHandle_t blas = cublas_on(stream);
  for (const TensorSlot& t : lay_.tensors) {
    float* p = master + t.offset;
    switch (t.kind) {
      case TensorKind::matrix: CUBLAS_CHECK(cublasSscal(blas, static_cast<int>(t.count), &scale, p, 1)); break;
      case TensorKind::bias: CUDA_CHECK(cudaMemsetAsync(p, 0, t.count * sizeof(float), stream)); break;
      case TensorKind::gain:
        CUDA_CHECK(cudaMemcpyAsync(p, ones.data(), t.count * sizeof(float), cudaMemcpyHostToDevice, stream));
        break;
    }
    // Padding after the tensor (wte's rows V..Vp-1 above all) back to zero.
    const std::size_t next = align_up(t.offset + t.region, kTensorAlign);
    if (next > t.offset + t.count) {
      CUDA_CHECK(cudaMemsetAsync(p + t.count, 0, (next - t.offset - t.count) * sizeof(float), stream));
    }
  }
  write_copies(stream);
  reset_optimizer(stream);
  CUDA_CHECK(cudaStreamSynchronize(stream));  // `ones` is read by the copies above
}

void Gpt2Step::set_parameters(const model_ref::Gpt2Params& p, cudaStream_t stream) {
  std::vector<float> host(lay_.total, 0.0f);
  const auto named = model_ref::named_tensors(p);
  if (named.size() != lay_.tensors.size()) throw std::invalid_argument("set_parameters: the model's shape differs");
  for (std::size_t i = 0; i < named.size(); ++i) {
    const TensorSlot& t = lay_.tensors[i];
    const std::vector<double>& values = *named[i].second;
    if (named[i].first != t.name || values.size() != t.count) {
      throw std::invalid_argument(fmt::format("set_parameters: tensor {} ({} values) where {} ({}) was expected",
                                              named[i].first, values.size(), t.name, t.count));
    }
    std::transform(values.begin(), values.end(), host.begin() + static_cast<long>(t.offset),
                   [](double x) { return static_cast<float>(x); });
  }
  CUDA_CHECK(cudaMemcpyAsync(master_.get(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice, stream));
  write_copies(stream);
  reset_optimizer(stream);
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void Gpt2Step::copy_parameters_from(const Gpt2Step& other, cudaStream_t stream) {
  if (other.lay_.total != lay_.total) throw std::invalid_argument("copy_parameters_from: the model's shape differs");
  CUDA_CHECK(cudaMemcpyAsync(master_.get(), other.master_.get(), master_.bytes(), cudaMemcpyDeviceToDevice, stream));
  write_copies(stream);
  reset_optimizer(stream);
}

model_ref::Gpt2Params Gpt2Step::read_tensors(const float* device_fp32, double scale) const {
  std::vector<float> host(lay_.total);
  CUDA_CHECK(cudaMemcpy(host.data(), device_fp32, host.size() * sizeof(float), cudaMemcpyDeviceToHost));
  model_ref::Gpt2Params out = model_ref::gpt2_zero_params(lay_.reference_config());
  const auto named = model_ref::named_tensors(out);
  for (std::size_t i = 0; i < named.size(); ++i) {
    const TensorSlot& t = lay_.tensors[i];
    std::vector<double>& values = *named[i].second;
    for (std::size_t j = 0; j < t.count; ++j) values[j] = static_cast<double>(host[t.offset + j]) / scale;
  }
  return out;
}

model_ref::Gpt2Params Gpt2Step::master_parameters() const { return read_tensors(master_.as<float>(), 1.0); }

model_ref::Gpt2Params Gpt2Step::gradients() const { return read_tensors(grads_.as<float>(), grad_scale_); }

model_ref::Gpt2Params Gpt2Step::compute_parameters() const {
  std::vector<unsigned char> raw(copy_.bytes());
  CUDA_CHECK(cudaMemcpy(raw.data(), copy_.get(), raw.size(), cudaMemcpyDeviceToHost));
  model_ref::Gpt2Params out = model_ref::gpt2_zero_params(lay_.reference_config());
  const auto named = model_ref::named_tensors(out);
  for (std::size_t i = 0; i < named.size(); ++i) {
    const TensorSlot& t = lay_.tensors[i];
    std::vector<double>& values = *named[i].second;
    for (std::size_t j = 0; j < t.count; ++j) values[j] = decode_element(c_.dtype, raw.data(), t.offset + j);
  }
  return out;
}

double Gpt2Step::read_loss(cudaStream_t stream) const {
  float loss = 0;
  CUDA_CHECK(cudaMemcpyAsync(&loss, loss_.get(), sizeof loss, cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return loss;
}

void Gpt2Step::poison(cudaStream_t stream) {
  auto nan = [&](const DeviceBuffer& b) {
    if (b.get()) CUDA_CHECK(cudaMemsetAsync(b.get(), 0xFF, b.bytes(), stream));  // NaN in every float format
  };
  for (const TensorSlot& t : lay_.tensors) {
    CUDA_CHECK(cudaMemsetAsync(g(t.offset), 0xFF, t.count * sizeof(float), stream));
  }
  for (const DeviceBuffer* b : {&streams_, &h_, &qkvh_, &o_, &y_, &mid_, &c_buf_, &pre_, &a_, &z_, &mean_, &rstd_,
                                &probs_, &lse_, &logits_, &logits32_, &losses_, &loss_}) {
    nan(*b);
  }
}

void Gpt2Step::forward_backward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks) {
  if (impl_ == Impl::eager) {
    eager_forward(tokens, targets, stream, marks);
    eager_backward(tokens, targets, stream, marks);
  } else {
    fused_forward(tokens, targets, stream, marks);
    fused_backward(tokens, targets, stream, marks);
  }
}

void Gpt2Step::head_backward(long vocab, cudaStream_t stream, PhaseMarks& marks) {
  const DType t = c_.dtype;
  const long T = lay_.T, d = lay_.d, L = lay_.L;
  // dwte = dlogits^T z (the lookup's part is added by the embedding backward), dz = dlogits wte.
  gemm_rm({true, false, vocab, d, T}, t, logits_.get(), z_.get(), DType::fp32, g(lay_.wte), 0.0f, stream);
  gemm_rm({false, false, T, d, vocab}, t, logits_.get(), w(lay_.wte), t, dtmp_.get(), 0.0f, stream);
  marks.mark("bwd_lm_head");
  CUDA_CHECK(kernels::layernorm_backward(t, dtmp_.get(), stream_at(L), w(lay_.lnf_g), mean_at(2 * L), rstd_at(2 * L),
                                         nullptr, ds_.get(), g(lay_.lnf_g), g(lay_.lnf_b), false, ln_ws_.get(),
                                         static_cast<std::size_t>(T), static_cast<std::size_t>(d), stream));
  marks.mark("bwd_norm");
}

void Gpt2Step::optimizer(cudaStream_t stream, PhaseMarks& marks) {
  ++step_;
  // The gradients carry the loss scale; eps scaled with them gives the unscaled update (above).
  kernels::AdamW opt = adamw_;
  opt.eps = static_cast<float>(adamw_.eps * grad_scale_);
  if (impl_ == Impl::fused) {
    CUDA_CHECK(kernels::adamw_multi_step(opt, step_, c_.dtype, adamw_table_, stream));
  } else {
    // Eager: one launch per tensor, as PyTorch's for-loop AdamW (foreach=False); the compute copy
    // is cast from the masters at the start of the next step.
    kernels::AdamW no_decay = opt;
    no_decay.weight_decay = 0;
    for (const TensorSlot& t : lay_.tensors) {
      CUDA_CHECK(kernels::adamw_step(t.decay() ? opt : no_decay, step_, master_.as<float>() + t.offset, g(t.offset),
                                     m_.as<float>() + t.offset, v_.as<float>() + t.offset, t.count, stream));
    }
  }
  marks.mark("optimizer");
}

}  // namespace wflops::model_step_detail
