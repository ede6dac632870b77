// The model step's parameters and buffers (model_step_impl.hpp): StepBase (the flat parameter
// buffers, allocation, initialisation, host transfers, the LM head with its loss, the embedding and
// AdamW) and GPT-2's layout and memory plan.
//
// Mixed precision as training runs it: fp32 master weights, fp32 gradients, fp32 AdamW moments;
// each step multiplies a bf16/fp16 compute copy of the masters. fp16 also needs a loss scale:
// the cross-entropy's gradient per logit is (softmax − onehot)/T, about 1/(V·T) = 2.4e-9 at
// V = 50257 and T = 8192, below fp16's smallest subnormal (6e-8; kernels/model/cross_entropy.cuh).
// The step scales the loss by S = 8·T, so each logit's gradient is 8·(softmax − onehot): at GPT-2's
// V, 8/V = 1.6e-4 is a normal fp16 number (the smallest is 6.1e-5); at Llama's V = 128256, 8/V =
// 6.2e-5 sits at that edge and many non-target gradients are subnormal, which costs about 1e-4 of
// relative precision in the weight gradients they feed, far inside fp16's tolerance. The largest, 8,
// leaves a factor of 8000 below fp16's maximum for the growth through the layers (the LayerNorm
// backward multiplies by rstd, about 1/(0.02·√2) = 35 on GPT-2's initialised residual stream).
// The fp32 gradients then carry S, and the optimizer unscales them exactly without a pass of its own: AdamW's update
// m̂ / (√v̂ + eps) computed on S·g equals the update on g with eps replaced by S·eps (the moments
// scale by S and S²; weight decay does not involve g). bf16 has fp32's range and needs no scale.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "common/fill_random.cuh"
#include "cuda/attention_unfused.hpp"
#include "cuda/blas_handles.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/model_step_impl.hpp"
#include "cuda/rotated_inputs.hpp"
#include "elementwise/cast.cuh"
#include "model/cross_entropy.cuh"
#include "model/embedding.cuh"
#include "model/layernorm_residual.cuh"
#include "numeric_formats.hpp"

namespace wflops::model_step_detail {

namespace {

// Elements: 256 bytes of the 16-bit compute copy (512 of fp32). cuBLASLt's heuristic assumes every
// operand 256-byte aligned unless told otherwise (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*_BYTES default
// to 256, cuBLAS documentation), and the fused step's epilogue GEMMs read weights from this buffer.
constexpr std::size_t kTensorAlign = 128;

}  // namespace

std::size_t TensorTable::add(std::string name, std::size_t count, TensorKind kind, std::size_t region) {
  const std::size_t offset = total;
  tensors.push_back({std::move(name), offset, count, region ? region : count, kind});
  total = align_up(offset + tensors.back().region, kTensorAlign);
  return offset;
}

long padded_vocab(long vocab) { return (vocab + 63) / 64 * 64; }

StepLayout::StepLayout(const flops::ModelStepShape& m)
    : d(static_cast<long>(m.hidden)),
      L(static_cast<long>(m.layers)),
      h(static_cast<long>(m.heads)),
      kvh(m.arch == flops::ModelArch::gpt2 ? h : static_cast<long>(m.kv_heads)),
      hd(h > 0 ? d / h : 0),
      kv(kvh * hd),
      s(static_cast<long>(m.seq)),
      b(static_cast<long>(m.batch)),
      V(static_cast<long>(m.vocab)),
      Vp(padded_vocab(V)),
      ff(m.arch == flops::ModelArch::gpt2 ? 4 * d : static_cast<long>(m.ffn)),
      T(b * s) {}

kernels::AttentionDims StepLayout::attention_dims() const { return {b, h, s, hd, true}; }

kernels::HeadLayout StepLayout::heads(std::size_t n, long head_count) const {
  return {static_cast<std::size_t>(b), static_cast<std::size_t>(s), static_cast<std::size_t>(head_count),
          static_cast<std::size_t>(hd), n};
}

Gpt2Layout::Gpt2Layout(const flops::ModelStepShape& m) : StepLayout(m) {
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
}

model_ref::Gpt2Config Gpt2Layout::reference_config() const {
  return {V, s, d, h, L, b};  // vocab, seq, hidden, heads, layers, batch (GPT-2's ln_eps)
}

// ---- StepBase ---------------------------------------------------------------------------------

StepBase::StepBase(const ModelStepConfig& c, Impl impl) : c_(c), impl_(impl) {
  const double T = c.shape.batch * c.shape.seq;
  grad_scale_ = c_.dtype == DType::fp16 ? 8.0 * T : 1.0;
  const long V = static_cast<long>(c.shape.vocab);
  logits_ld_ = impl_ == Impl::fused ? padded_vocab(V) : V;
}

StepBase::~StepBase() = default;

BufferSizes StepBase::shared_sizes() const {
  const StepLayout& lay = shape();
  const std::size_t e = dtype_bytes(c_.dtype), f = sizeof(float), T = static_cast<std::size_t>(lay.T);
  const std::size_t L = static_cast<std::size_t>(lay.L), td = slice_bytes(lay.td(), e);
  const kernels::AttentionDims dims = lay.attention_dims();
  const std::size_t rows = static_cast<std::size_t>(dims.rows()), scores = rows * static_cast<std::size_t>(dims.seq);
  BufferSizes z;
  z.params = 3 * lay.total * f + lay.total * e;
  z.grads = lay.total * f;
  // BlockPtrs: s_0..s_L and z; per layer h, o, y, mid, c and the q/k/v heads; eager's P or fused's
  // log-sum-exp per layer.
  z.activations = (L + 2) * td + L * (5 * td + slice_bytes(3 * lay.td(), e));
  z.activations += L * (impl_ == Impl::eager ? slice_bytes(scores, e) : slice_bytes(rows, f));
  // branch, ds, dtmp, dO heads, dq/dk/dv heads; eager's scores, lse and row dots; the per-token
  // losses and their mean.
  z.temps = 4 * td + slice_bytes(3 * lay.td(), e);
  if (impl_ == Impl::eager) z.temps += slice_bytes(scores, e) + 2 * slice_bytes(rows, f);
  z.temps += slice_bytes(T, f) + slice_bytes(1, f);
  z.logits = slice_bytes(T * static_cast<std::size_t>(logits_ld_), e);
  if (impl_ == Impl::eager) z.logits += slice_bytes(T * static_cast<std::size_t>(lay.V), f);
  std::size_t emb = 0;
  if (kernels::embedding_backward_workspace_bytes(T, static_cast<std::size_t>(lay.V), &emb) != cudaSuccess) {
    // No device to ask CUB (a listing on a machine without a GPU): the four id and position arrays
    // and as much again for the sort's own storage.
    (void)cudaGetLastError();
    emb = 8 * align_up(T * sizeof(int));
  }
  z.workspaces = align_up(emb);
  if (impl_ == Impl::fused) z.workspaces += align_up(FusedAttention::workspace_estimate(lay.attention_dims()));
  z.blas = kBlasWorkspaceBytes;
  return z;
}

void StepBase::allocate(cudaStream_t stream, const StepBase* share) {
  const StepLayout& lay = shape();
  const std::size_t e = dtype_bytes(c_.dtype), f = sizeof(float), T = static_cast<std::size_t>(lay.T);
  if (share) {
    if (share->shape().total != lay.total || share->c_.dtype != c_.dtype) {
      throw std::invalid_argument("allocate: the shared step's parameters differ");
    }
    params_ = share->params_;
  } else {
    params_ = std::make_shared<Params>();
    params_->master = DeviceBuffer(lay.total * f);
    params_->m = DeviceBuffer(lay.total * f);
    params_->v = DeviceBuffer(lay.total * f);
    params_->copy = DeviceBuffer(lay.total * e);
    // Padding (between tensors, a padded head's rows V..Vp-1) stays zero and finite in every buffer.
    for (DeviceBuffer* p : {&params_->master, &params_->m, &params_->v, &params_->copy})
      CUDA_CHECK(cudaMemsetAsync(p->get(), 0, p->bytes(), stream));
  }
  grads_ = DeviceBuffer(lay.total * f);
  CUDA_CHECK(cudaMemsetAsync(grads_.get(), 0, grads_.bytes(), stream));
  const std::size_t L = static_cast<std::size_t>(lay.L), td = slice_bytes(lay.td(), e);
  const kernels::AttentionDims dims = lay.attention_dims();
  const std::size_t rows = static_cast<std::size_t>(dims.rows()), scores = rows * static_cast<std::size_t>(dims.seq);
  streams_ = DeviceBuffer((L + 1) * td);
  z_ = DeviceBuffer(td);
  for (DeviceBuffer* p : {&h_, &o_, &y_, &mid_, &c_buf_}) *p = DeviceBuffer(L * td);
  qkvh_ = DeviceBuffer(L * slice_bytes(3 * lay.td(), e));
  for (DeviceBuffer* p : {&branch_, &ds_, &dtmp_, &dout_heads_}) *p = DeviceBuffer(td);
  dheads_ = DeviceBuffer(slice_bytes(3 * lay.td(), e));
  if (impl_ == Impl::eager) {
    probs_ = DeviceBuffer(L * slice_bytes(scores, e));
    scores_ = DeviceBuffer(slice_bytes(scores, e));
    attn_lse_ = DeviceBuffer(slice_bytes(rows, f));
    row_dot_ = DeviceBuffer(slice_bytes(rows, f));
  } else {
    lse_ = DeviceBuffer(L * slice_bytes(rows, f));
  }
  logits_ = DeviceBuffer(slice_bytes(T * static_cast<std::size_t>(logits_ld_), e));
  if (impl_ == Impl::eager) logits32_ = DeviceBuffer(slice_bytes(T * static_cast<std::size_t>(lay.V), f));
  losses_ = DeviceBuffer(slice_bytes(T, f));
  loss_ = DeviceBuffer(slice_bytes(1, f));
  CUDA_CHECK(kernels::embedding_backward_workspace_bytes(T, static_cast<std::size_t>(lay.V), &emb_ws_bytes_));
  emb_ws_ = DeviceBuffer(emb_ws_bytes_);
  if (impl_ == Impl::fused) {
    attention_.choose(c_.dtype, lay.attention_dims(), c_.force_flash_attention);
    std::vector<kernels::AdamWTensor> tensors;
    for (const TensorSlot& s : lay.tensors) {
      kernels::AdamWTensor a;
      a.param = params_->master.as<float>() + s.offset;
      a.grad = g(s.offset);
      a.m = params_->m.as<float>() + s.offset;
      a.v = params_->v.as<float>() + s.offset;
      a.copy = params_->copy.as<char>() + s.offset * e;
      a.n = s.count;
      a.decay = s.decay();
      tensors.push_back(a);
    }
    CUDA_CHECK(adamw_table_.prepare(tensors));
  }
  allocate_blocks(stream);
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void* StepBase::stream_at(long l) const { return act(streams_, l, shape().td()); }

StepBase::BlockPtrs StepBase::block(long l) const {
  const StepLayout& lay = shape();
  const std::size_t td = lay.td(), e = dtype_bytes(c_.dtype);
  const kernels::AttentionDims dims = lay.attention_dims();
  const std::size_t rows = static_cast<std::size_t>(dims.rows());
  BlockPtrs p{};
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
  p.probs = probs_.get() ? act(probs_, l, rows * static_cast<std::size_t>(dims.seq)) : nullptr;
  p.lse =
      lse_.get()
          ? reinterpret_cast<float*>(lse_.as<char>() + static_cast<std::size_t>(l) * slice_bytes(rows, sizeof(float)))
          : nullptr;
  return p;
}

void StepBase::attention_forward(const BlockPtrs& p, cudaStream_t stream) {
  if (impl_ == Impl::fused) {
    attention_.forward(p.q, p.k, p.v, p.o, p.lse, stream);
    return;
  }
  PhaseMarks quiet;  // unfused attention's own part names are not the model's phases
  const UnfusedScratch scratch{scores_.get(), p.probs, attn_lse_.as<float>(), row_dot_.as<float>()};
  unfused_attention_forward(c_.dtype, p.q, p.k, p.v, p.o, scratch, shape().attention_dims(), stream, quiet);
}

void StepBase::attention_backward(const BlockPtrs& p, cudaStream_t stream) {
  if (impl_ == Impl::fused) {
    attention_.backward(p.q, p.k, p.v, p.o, p.lse, dout_heads_.get(), dheads_.get(), stream);
    return;
  }
  PhaseMarks quiet;
  const UnfusedScratch scratch{scores_.get(), p.probs, attn_lse_.as<float>(), row_dot_.as<float>()};
  char* dq = dheads_.as<char>();
  const std::size_t bytes = shape().td() * dtype_bytes(c_.dtype);
  unfused_attention_backward(c_.dtype, p.q, p.k, p.v, p.o, dout_heads_.get(), dq, dq + bytes, dq + 2 * bytes, scratch,
                             shape().attention_dims(), stream, quiet);
}

void StepBase::forward_backward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks) {
  forward(tokens, targets, stream, marks);
  backward(tokens, targets, stream, marks);
}

void* StepBase::w(std::size_t offset) const { return params_->copy.as<char>() + offset * dtype_bytes(c_.dtype); }

void* StepBase::act(const DeviceBuffer& b, long layer, std::size_t elements_per_layer) const {
  return b.as<char>() + static_cast<std::size_t>(layer) * slice_bytes(elements_per_layer, dtype_bytes(c_.dtype));
}

void StepBase::write_copies(cudaStream_t stream) {
  CUDA_CHECK(kernels::cast(DType::fp32, params_->master.get(), c_.dtype, params_->copy.get(), shape().total, stream));
}

void StepBase::reset_optimizer(cudaStream_t stream) {
  CUDA_CHECK(cudaMemsetAsync(params_->m.get(), 0, params_->m.bytes(), stream));
  CUDA_CHECK(cudaMemsetAsync(params_->v.get(), 0, params_->v.bytes(), stream));
  step_ = 0;
}

void StepBase::init_parameters(std::uint64_t seed, float std, cudaStream_t stream) {
  const StepLayout& lay = shape();
  float* master = params_->master.as<float>();
  CUDA_CHECK(kernels::fill_random(DType::fp32, master, lay.total, seed, stream));
  // Uniform on [-a, a) has standard deviation a/√3.
  const float scale = std * std::sqrt(3.0f);
  const std::vector<float> ones(static_cast<std::size_t>(lay.d), 1.0f);
  cublasHandle_t blas = cublas_on(stream);
  for (const TensorSlot& t : lay.tensors) {
    float* p = master + t.offset;
    switch (t.kind) {
      case TensorKind::matrix: CUBLAS_CHECK(cublasSscal(blas, static_cast<int>(t.count), &scale, p, 1)); break;
      case TensorKind::bias: CUDA_CHECK(cudaMemsetAsync(p, 0, t.count * sizeof(float), stream)); break;
      case TensorKind::gain:
        CUDA_CHECK(cudaMemcpyAsync(p, ones.data(), t.count * sizeof(float), cudaMemcpyHostToDevice, stream));
        break;
    }
    // Padding after the tensor (a padded head's rows V..Vp-1 above all) back to zero.
    const std::size_t next = align_up(t.offset + t.region, kTensorAlign);
    if (next > t.offset + t.count) {
      CUDA_CHECK(cudaMemsetAsync(p + t.count, 0, (next - t.offset - t.count) * sizeof(float), stream));
    }
  }
  write_copies(stream);
  reset_optimizer(stream);
  CUDA_CHECK(cudaStreamSynchronize(stream));  // `ones` is read by the copies above
}

void StepBase::set_tensors(const ConstNamed& named, cudaStream_t stream) {
  const StepLayout& lay = shape();
  std::vector<float> host(lay.total, 0.0f);
  if (named.size() != lay.tensors.size()) throw std::invalid_argument("set_parameters: the model's shape differs");
  for (std::size_t i = 0; i < named.size(); ++i) {
    const TensorSlot& t = lay.tensors[i];
    const std::vector<double>& values = *named[i].second;
    if (named[i].first != t.name || values.size() != t.count) {
      throw std::invalid_argument(fmt::format("set_parameters: tensor {} ({} values) where {} ({}) was expected",
                                              named[i].first, values.size(), t.name, t.count));
    }
    std::transform(values.begin(), values.end(), host.begin() + static_cast<long>(t.offset),
                   [](double x) { return static_cast<float>(x); });
  }
  CUDA_CHECK(
      cudaMemcpyAsync(params_->master.get(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice, stream));
  write_copies(stream);
  reset_optimizer(stream);
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void StepBase::read_tensors(const float* device_fp32, double scale, const Named& out) const {
  const StepLayout& lay = shape();
  std::vector<float> host(lay.total);
  CUDA_CHECK(cudaMemcpy(host.data(), device_fp32, host.size() * sizeof(float), cudaMemcpyDeviceToHost));
  for (std::size_t i = 0; i < out.size(); ++i) {
    const TensorSlot& t = lay.tensors[i];
    std::vector<double>& values = *out[i].second;
    for (std::size_t j = 0; j < t.count; ++j) values[j] = static_cast<double>(host[t.offset + j]) / scale;
  }
}

void StepBase::read_compute_copies(const Named& out) const {
  const StepLayout& lay = shape();
  std::vector<unsigned char> raw(params_->copy.bytes());
  CUDA_CHECK(cudaMemcpy(raw.data(), params_->copy.get(), raw.size(), cudaMemcpyDeviceToHost));
  for (std::size_t i = 0; i < out.size(); ++i) {
    const TensorSlot& t = lay.tensors[i];
    std::vector<double>& values = *out[i].second;
    for (std::size_t j = 0; j < t.count; ++j) values[j] = decode_element(c_.dtype, raw.data(), t.offset + j);
  }
}

double StepBase::read_loss(cudaStream_t stream) const {
  float loss = 0;
  CUDA_CHECK(cudaMemcpyAsync(&loss, loss_.get(), sizeof loss, cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return loss;
}

void StepBase::poison(cudaStream_t stream) {
  for (const TensorSlot& t : shape().tensors) {
    CUDA_CHECK(cudaMemsetAsync(g(t.offset), 0xFF, t.count * sizeof(float), stream));
  }
  std::vector<const DeviceBuffer*> buffers = activation_buffers();
  for (const DeviceBuffer* b : {&streams_, &h_, &qkvh_, &o_, &y_, &mid_, &c_buf_, &z_, &probs_, &lse_, &logits_,
                                &logits32_, &losses_, &loss_}) {
    buffers.push_back(b);
  }
  for (const DeviceBuffer* b : buffers) {
    if (b->get()) CUDA_CHECK(cudaMemsetAsync(b->get(), 0xFF, b->bytes(), stream));  // NaN in every float format
  }
}

void StepBase::embedding_forward(const int* tokens, std::size_t table, const void* positions, void* out,
                                 cudaStream_t stream, PhaseMarks& marks) const {
  const StepLayout& lay = shape();
  CUDA_CHECK(kernels::embedding_forward(c_.dtype, tokens, w(table), positions, out, static_cast<std::size_t>(lay.T),
                                        static_cast<std::size_t>(lay.s), static_cast<std::size_t>(lay.V),
                                        static_cast<std::size_t>(lay.d), stream));
  marks.mark("fwd_embedding");
}

void StepBase::embedding_backward(const int* tokens, const void* ds, std::size_t table, float* dpositions,
                                  cudaStream_t stream, PhaseMarks& marks) {
  const StepLayout& lay = shape();
  const std::size_t du = static_cast<std::size_t>(lay.d), su = static_cast<std::size_t>(lay.s);
  if (dpositions) CUDA_CHECK(cudaMemsetAsync(dpositions, 0, su * du * sizeof(float), stream));
  CUDA_CHECK(kernels::embedding_backward(c_.dtype, tokens, ds, g(table), dpositions, static_cast<std::size_t>(lay.T),
                                         su, static_cast<std::size_t>(lay.V), du, emb_ws_.get(), emb_ws_bytes_,
                                         stream));
  marks.mark("bwd_embedding");
}

void StepBase::head_forward(const void* z, std::size_t head, const int* targets, cudaStream_t stream,
                            PhaseMarks& marks) {
  const DType t = c_.dtype;
  const StepLayout& lay = shape();
  const std::size_t Tu = static_cast<std::size_t>(lay.T), Vu = static_cast<std::size_t>(lay.V);
  // The fused step's padding columns are 0 (the head's padding rows are).
  gemm_rm({false, true, lay.T, logits_ld_, lay.d}, t, z, w(head), t, logits_.get(), 0.0f, stream);  // z W^T
  marks.mark("fwd_lm_head");
  if (impl_ == Impl::eager) {
    CUDA_CHECK(kernels::cast(t, logits_.get(), DType::fp32, logits32_.get(), Tu * Vu, stream));
    CUDA_CHECK(kernels::softmax_cross_entropy(DType::fp32, logits32_.get(), nullptr, targets, losses_.as<float>(), Tu,
                                              Vu, Vu, 0.0f, stream));
  } else {
    CUDA_CHECK(kernels::softmax_cross_entropy(t, logits_.get(), nullptr, targets, losses_.as<float>(), Tu, Vu,
                                              static_cast<std::size_t>(logits_ld_), 0.0f, stream));
  }
  CUDA_CHECK(kernels::mean_loss(losses_.as<float>(), Tu, loss_.as<float>(), stream));
  marks.mark("fwd_loss");
}

void StepBase::head_backward(const void* z, std::size_t head, const int* targets, void* dz, cudaStream_t stream,
                             PhaseMarks& marks) {
  const DType t = c_.dtype;
  const StepLayout& lay = shape();
  const std::size_t Tu = static_cast<std::size_t>(lay.T), Vu = static_cast<std::size_t>(lay.V);
  // d loss / d logit = (S/T) (softmax − onehot); eager in fp32, cast back to the logits' dtype
  // (autocast's cast backward), over the logits themselves; fused over the 16-bit logits in place.
  const float scale = static_cast<float>(grad_scale_ / static_cast<double>(lay.T));
  if (impl_ == Impl::eager) {
    CUDA_CHECK(kernels::softmax_cross_entropy(DType::fp32, logits32_.get(), logits32_.get(), targets,
                                              losses_.as<float>(), Tu, Vu, Vu, scale, stream));
    CUDA_CHECK(kernels::cast(DType::fp32, logits32_.get(), t, logits_.get(), Tu * Vu, stream));
  } else {
    CUDA_CHECK(kernels::softmax_cross_entropy(t, logits_.get(), logits_.get(), targets, losses_.as<float>(), Tu, Vu,
                                              static_cast<std::size_t>(logits_ld_), scale, stream));
  }
  marks.mark("bwd_loss");
  // dW = dlogits^T z (a padded head's padding rows get 0 from dlogits' zero columns), dz = dlogits W.
  gemm_rm({true, false, logits_ld_, lay.d, lay.T}, t, logits_.get(), z, DType::fp32, g(head), 0.0f, stream);
  gemm_rm({false, false, lay.T, lay.d, logits_ld_}, t, logits_.get(), w(head), t, dz, 0.0f, stream);
  marks.mark("bwd_lm_head");
}

void StepBase::optimizer(cudaStream_t stream, PhaseMarks& marks) {
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
    for (const TensorSlot& t : shape().tensors) {
      CUDA_CHECK(kernels::adamw_step(t.decay() ? opt : no_decay, step_, params_->master.as<float>() + t.offset,
                                     g(t.offset), params_->m.as<float>() + t.offset, params_->v.as<float>() + t.offset,
                                     t.count, stream));
    }
  }
  marks.mark("optimizer");
}

// ---- GPT-2 ------------------------------------------------------------------------------------

Gpt2Step::Gpt2Step(const ModelStepConfig& c, Impl impl) : StepBase(c, impl), lay_(c.shape) {
  aux_ld_ = impl_ == Impl::fused ? lt_aux_ld(false, lay_.ff) : lay_.ff;
}

Gpt2Step::~Gpt2Step() = default;

std::size_t Gpt2Step::stat_stride() const { return slice_bytes(static_cast<std::size_t>(lay_.T), sizeof(float)); }

BufferSizes Gpt2Step::sizes() const {
  const std::size_t e = dtype_bytes(c_.dtype);
  const std::size_t L = static_cast<std::size_t>(lay_.L), T = static_cast<std::size_t>(lay_.T);
  const std::size_t td = lay_.td(), tf = T * static_cast<std::size_t>(lay_.ff);
  BufferSizes z = shared_sizes();
  // Per layer pre and a; the statistics of 2L + 1 LayerNorms.
  z.activations += L * (slice_bytes(T * static_cast<std::size_t>(aux_ld_), e) + slice_bytes(tf, e));
  z.activations += 2 * (2 * L + 1) * stat_stride();
  // qkv, dqkv; d4; fused's fc bias gradient in 16 bits.
  z.temps += 2 * slice_bytes(3 * td, e) + slice_bytes(tf, e);
  if (impl_ == Impl::fused) z.temps += slice_bytes(static_cast<std::size_t>(lay_.ff), e);
  z.workspaces += align_up(kernels::layernorm_backward_workspace_bytes(T, static_cast<std::size_t>(lay_.d)));
  return z;
}

void Gpt2Step::allocate_blocks(cudaStream_t) {
  const std::size_t e = dtype_bytes(c_.dtype);
  const std::size_t L = static_cast<std::size_t>(lay_.L), T = static_cast<std::size_t>(lay_.T);
  const std::size_t td = lay_.td(), tf = T * static_cast<std::size_t>(lay_.ff);
  pre_ = DeviceBuffer(L * slice_bytes(T * static_cast<std::size_t>(aux_ld_), e));
  a_ = DeviceBuffer(L * slice_bytes(tf, e));
  mean_ = DeviceBuffer((2 * L + 1) * stat_stride());
  rstd_ = DeviceBuffer((2 * L + 1) * stat_stride());
  if (impl_ == Impl::fused) db_fc_ = DeviceBuffer(slice_bytes(static_cast<std::size_t>(lay_.ff), e));
  qkv_ = DeviceBuffer(slice_bytes(3 * td, e));
  dqkv_ = DeviceBuffer(slice_bytes(3 * td, e));
  d4_ = DeviceBuffer(slice_bytes(tf, e));
  ln_ws_ = DeviceBuffer(kernels::layernorm_backward_workspace_bytes(T, static_cast<std::size_t>(lay_.d)));
  if (impl_ == Impl::fused) plan_fused();
}

std::string Gpt2Step::describe() const {
  if (impl_ == Impl::eager) {
    return "eager: cuBLAS cublasGemmEx, one of our kernels per bias, GELU, residual and LayerNorm, unfused "
           "attention over s x s scores, fp32 cross-entropy on a cast of the logits, per-tensor AdamW";
  }
  return "fused: cuBLASLt bias / bias+GELU / dGELU+bias-gradient epilogues, fused residual+LayerNorm, " +
         attention_.describe() + ", fused softmax+cross-entropy on 16-bit logits, one multi-tensor AdamW";
}

float* Gpt2Step::mean_at(long norm) const {
  return reinterpret_cast<float*>(mean_.as<char>() + static_cast<std::size_t>(norm) * stat_stride());
}

float* Gpt2Step::rstd_at(long norm) const {
  return reinterpret_cast<float*>(rstd_.as<char>() + static_cast<std::size_t>(norm) * stat_stride());
}

Gpt2Step::LayerPtrs Gpt2Step::layer(long l) const {
  const std::size_t T = static_cast<std::size_t>(lay_.T);
  LayerPtrs p{block(l), nullptr, nullptr};
  p.pre = act(pre_, l, T * static_cast<std::size_t>(aux_ld_));
  p.a = act(a_, l, T * static_cast<std::size_t>(lay_.ff));
  return p;
}

std::vector<const DeviceBuffer*> Gpt2Step::activation_buffers() const { return {&pre_, &a_, &mean_, &rstd_}; }

void Gpt2Step::forward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks) {
  if (impl_ == Impl::eager) {
    eager_forward(tokens, targets, stream, marks);
  } else {
    fused_forward(tokens, targets, stream, marks);
  }
}

void Gpt2Step::backward(const int* tokens, const int* targets, cudaStream_t stream, PhaseMarks& marks) {
  // The loss, the tied LM head's part of dwte and LN_f, then the blocks and the embedding.
  head_backward(z_.get(), lay_.wte, targets, dtmp_.get(), stream, marks);
  final_norm_backward(stream, marks);
  if (impl_ == Impl::eager) {
    eager_backward(tokens, stream, marks);
  } else {
    fused_backward(tokens, stream, marks);
  }
}

void Gpt2Step::final_norm_backward(cudaStream_t stream, PhaseMarks& marks) {
  const long L = lay_.L;
  CUDA_CHECK(kernels::layernorm_backward(c_.dtype, dtmp_.get(), stream_at(L), w(lay_.lnf_g), mean_at(2 * L),
                                         rstd_at(2 * L), nullptr, ds_.get(), g(lay_.lnf_g), g(lay_.lnf_b), false,
                                         ln_ws_.get(), static_cast<std::size_t>(lay_.T),
                                         static_cast<std::size_t>(lay_.d), stream));
  marks.mark("bwd_norm");
}

}  // namespace wflops::model_step_detail
