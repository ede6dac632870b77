#include "cuda/cudnn_sdpa.hpp"

#include <fmt/core.h>

#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>
#include <utility>

#include "cuda/cuda_check.hpp"
#include "cuda/cudnn_loader.hpp"
#include "cuda/rotated_inputs.hpp"

namespace wflops::cudnn {

// ---- the graph as data ------------------------------------------------------------------------

const TensorSpec& SdpaGraph::tensor(int64_t uid) const {
  for (const auto& t : tensors) {
    if (t.uid == uid) return t;
  }
  throw std::logic_error(fmt::format("SDPA graph: no tensor with uid {}", uid));
}

std::string sdpa_unsupported_reason(DType dtype, const kernels::AttentionDims& d) {
  if (dtype != DType::bf16 && dtype != DType::fp16) {
    return fmt::format("cuDNN attention: bf16 and fp16 only, not {}", dtype_name(dtype));
  }
  if (d.batch < 1 || d.heads < 1 || d.seq < 1 || d.head_dim < 1) return "cuDNN attention needs b, h, s, d >= 1";
  // cuDNN 9's fused attention engines take head dims that are multiples of 8, up to 128 on
  // Ampere and 256 on Hopper; the engine decides, this only rejects what none accepts.
  if (d.head_dim % 8 != 0 || d.head_dim > 256) {
    return fmt::format("cuDNN attention needs d a multiple of 8 and at most 256 (d = {})", d.head_dim);
  }
  return "";
}

namespace {

class GraphBuilder {
 public:
  explicit GraphBuilder(SdpaGraph& g) : g_(g) {}

  int64_t real(int64_t uid, std::string name, cudnnDataType_t type, std::vector<int64_t> dims,
               std::vector<int64_t> strides, bool by_value = false) {
    g_.tensors.push_back({uid, std::move(name), type, std::move(dims), std::move(strides), false, by_value});
    return uid;
  }
  // A virtual fp32 (or `type`) intermediate shaped like `like`.
  int64_t virt(std::string name, const TensorSpec& like, cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    return virt(std::move(name), type, like.dims, like.strides);
  }
  // A virtual tensor with its own dims and strides (a transposed view, a row statistic).
  int64_t virt(std::string name, cudnnDataType_t type, std::vector<int64_t> dims, std::vector<int64_t> strides) {
    const int64_t uid = next_++;
    g_.tensors.push_back({uid, std::move(name), type, std::move(dims), std::move(strides), true, false});
    return uid;
  }
  const TensorSpec& at(int64_t uid) const { return g_.tensor(uid); }

  void matmul(std::string name, int64_t a, int64_t b, int64_t y) { add(OpKind::matmul, std::move(name), a, y).b = b; }
  void pointwise(std::string name, cudnnPointwiseMode_t mode, int64_t x, int64_t b, int64_t y,
                 cudnnDataType_t compute = CUDNN_DATA_FLOAT, int64_t t = 0, int64_t axis = -1) {
    OpSpec& op = add(OpKind::pointwise, std::move(name), x, y);
    op.pointwise = mode;
    op.compute = compute;
    op.b = b;
    op.t = t;
    op.axis = axis;
  }
  void reshape(std::string name, int64_t x, int64_t y) { add(OpKind::reshape, std::move(name), x, y); }
  void reduction(std::string name, cudnnReduceTensorOp_t mode, int64_t x, int64_t y) {
    add(OpKind::reduction, std::move(name), x, y).reduction = mode;
  }

 private:
  // Appends an operation x -> y of `kind`; the caller sets what else that kind needs.
  OpSpec& add(OpKind kind, std::string name, int64_t x, int64_t y) {
    OpSpec op;
    op.kind = kind;
    op.name = std::move(name);
    op.x = x;
    op.y = y;
    g_.ops.push_back(std::move(op));
    return g_.ops.back();
  }

  SdpaGraph& g_;
  int64_t next_ = kFirstVirtualUid;
};

}  // namespace

SdpaGraph sdpa_forward_graph(DType dtype, const kernels::AttentionDims& d) {
  throw_if_unsupported(sdpa_unsupported_reason(dtype, d));
  const cudnnDataType_t io = dtype == DType::bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
  const int64_t b = d.batch, h = d.heads, s = d.seq, hd = d.head_dim;
  const std::vector<int64_t> qkv_dims = {b, h, s, hd}, qkv_strides = {h * s * hd, s * hd, hd, 1};
  SdpaGraph g;
  GraphBuilder gb(g);
  const int64_t q = gb.real(kUidQ, "Q", io, qkv_dims, qkv_strides);
  // Kᵀ [b, h, d, s] is K [b, h, s, d] read through swapped strides: no copy.
  const int64_t k = gb.real(kUidK, "K^T", io, {b, h, hd, s}, {h * s * hd, s * hd, 1, hd});
  const int64_t v = gb.real(kUidV, "V", io, qkv_dims, qkv_strides);
  const int64_t o = gb.real(kUidO, "O", io, qkv_dims, qkv_strides);
  const int64_t stats = gb.real(kUidStats, "Stats", CUDNN_DATA_FLOAT, {b, h, s, 1}, {h * s, s, 1, 1});
  const int64_t scale = gb.real(kUidScale, "attn_scale", CUDNN_DATA_FLOAT, {1, 1, 1, 1}, {1, 1, 1, 1}, true);

  // Scores [b, h, s, s] and per-row statistics [b, h, s, 1] are virtual fp32.
  TensorSpec score_like;
  score_like.dims = {b, h, s, s};
  score_like.strides = {h * s * s, s * s, s, 1};
  const TensorSpec row_like = gb.at(stats);  // a copy: adding tensors moves the vector

  const int64_t scores = gb.virt("S", score_like);
  gb.matmul("bmm1 S = Q K^T", q, k, scores);
  int64_t last = gb.virt("S*scale", score_like);
  gb.pointwise("attn_scale", CUDNN_POINTWISE_MUL, scores, scale, last);

  if (d.causal) {
    const int64_t neg = gb.real(kUidNegInf, "masked_value", CUDNN_DATA_FLOAT, {1, 1, 1, 1}, {1, 1, 1, 1}, true);
    const int64_t row = gb.virt("row_index", score_like, CUDNN_DATA_INT32);
    gb.pointwise("gen_row_index", CUDNN_POINTWISE_GEN_INDEX, last, 0, row, CUDNN_DATA_INT32, 0, 2);
    const int64_t col = gb.virt("col_index", score_like, CUDNN_DATA_INT32);
    gb.pointwise("gen_col_index", CUDNN_POINTWISE_GEN_INDEX, last, 0, col, CUDNN_DATA_INT32, 0, 3);
    const int64_t keep = gb.virt("row>=col", score_like, CUDNN_DATA_BOOLEAN);
    gb.pointwise("row_ge_col", CUDNN_POINTWISE_CMP_GE, row, col, keep, CUDNN_DATA_BOOLEAN);
    const int64_t masked = gb.virt("S_masked", score_like);
    // BINARY_SELECT: y = t ? x : b.
    gb.pointwise("causal_select", CUDNN_POINTWISE_BINARY_SELECT, last, neg, masked, CUDNN_DATA_FLOAT, keep);
    last = masked;
  }

  const int64_t row_max = gb.virt("max", row_like);
  gb.reduction("row_max", CUDNN_REDUCE_TENSOR_MAX, last, row_max);
  const int64_t shifted = gb.virt("S-max", score_like);
  gb.pointwise("sub_max", CUDNN_POINTWISE_SUB, last, row_max, shifted);
  const int64_t exps = gb.virt("exp", score_like);
  gb.pointwise("exp", CUDNN_POINTWISE_EXP, shifted, 0, exps);
  const int64_t row_sum = gb.virt("sum", row_like);
  gb.reduction("row_sum", CUDNN_REDUCE_TENSOR_ADD, exps, row_sum);
  const int64_t log_sum = gb.virt("log(sum)", row_like);
  gb.pointwise("log", CUDNN_POINTWISE_LOG, row_sum, 0, log_sum);
  gb.pointwise("stats = max + log(sum)", CUDNN_POINTWISE_ADD, row_max, log_sum, stats);
  // P is bmm2's A operand: in the I/O type, which the fused engines require there (cudnn-frontend's
  // SDPA forward node sets bmm2's A input to Q's type, "Requirement by cudnn backend").
  const int64_t probs = gb.virt("P", score_like, io);
  gb.pointwise("div", CUDNN_POINTWISE_DIV, exps, row_sum, probs);
  gb.matmul("bmm2 O = P V", probs, v, o);
  return g;
}

std::string sdpa_backward_layout_name(SdpaBackwardLayout layout) {
  switch (layout) {
    case SdpaBackwardLayout::current: return "current";
    case SdpaBackwardLayout::frontend_1_8: return "frontend-1.8";
    case SdpaBackwardLayout::legacy: return "legacy";
  }
  return "?";
}

bool sdpa_backward_has_real_softmax_sum(SdpaBackwardLayout layout) { return layout != SdpaBackwardLayout::legacy; }

std::string sdpa_backward_variant_name(const SdpaBackwardVariant& v) {
  return sdpa_backward_layout_name(v.layout) + (v.k_type == SdpaKType::io ? ", K in io type" : "");
}

const std::vector<SdpaBackwardVariant>& sdpa_backward_attempts() {
  static const std::vector<SdpaBackwardVariant> attempts = {
      {SdpaBackwardLayout::current, SdpaKType::intermediate},
      {SdpaBackwardLayout::frontend_1_8, SdpaKType::intermediate},
      {SdpaBackwardLayout::legacy, SdpaKType::intermediate},
      {SdpaBackwardLayout::current, SdpaKType::io},
  };
  return attempts;
}

SdpaGraph sdpa_backward_graph(DType dtype, const kernels::AttentionDims& d, SdpaBackwardVariant variant) {
  throw_if_unsupported(sdpa_unsupported_reason(dtype, d));
  const SdpaBackwardLayout layout = variant.layout;
  const bool real_softmax_sum = sdpa_backward_has_real_softmax_sum(layout);
  const bool mask_after_stats = layout == SdpaBackwardLayout::current;
  const bool dp_times_one = layout != SdpaBackwardLayout::current;
  const cudnnDataType_t io = dtype == DType::bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
  const int64_t b = d.batch, h = d.heads, s = d.seq, hd = d.head_dim;
  const std::vector<int64_t> bhsd = {b, h, s, hd}, bhsd_strides = {h * s * hd, s * hd, hd, 1};
  // Kᵀ and Vᵀ: [b, h, d, s] views of the [b, h, s, d] buffers (stepping d moves 1, stepping s moves d).
  const std::vector<int64_t> bhds = {b, h, hd, s}, bhds_strides = {h * s * hd, s * hd, 1, hd};
  const std::vector<int64_t> row_dims = {b, h, s, 1}, row_strides = {h * s, s, 1, 1};
  const std::vector<int64_t> ss = {b, h, s, s}, ss_strides = {h * s * s, s * s, s, 1};
  // The transposed [s_kv, s_q] view of a score matrix: stepping a key row moves 1, a query column s.
  const std::vector<int64_t> ss_t_strides = {h * s * s, s * s, 1, s};

  SdpaGraph g;
  GraphBuilder gb(g);
  const int64_t q = gb.real(kUidQ, "Q", io, bhsd, bhsd_strides);
  const int64_t k = gb.real(kUidK, "K^T", io, bhds, bhds_strides);
  const int64_t v = gb.real(kUidV, "V^T", io, bhds, bhds_strides);
  const int64_t o = gb.real(kUidO, "O", io, bhsd, bhsd_strides);
  const int64_t stats = gb.real(kUidStats, "Stats", CUDNN_DATA_FLOAT, row_dims, row_strides);
  const int64_t d_o = gb.real(kUidDO, "dO", io, bhsd, bhsd_strides);
  const int64_t dq = gb.real(kUidDQ, "dQ", io, bhsd, bhsd_strides);
  const int64_t dk = gb.real(kUidDK, "dK", io, bhsd, bhsd_strides);
  const int64_t dv = gb.real(kUidDV, "dV", io, bhsd, bhsd_strides);
  const std::vector<int64_t> scalar = {1, 1, 1, 1};
  const int64_t scale = gb.real(kUidScale, "attn_scale", CUDNN_DATA_FLOAT, scalar, scalar, true);
  const int64_t one = gb.real(kUidOne, "one", CUDNN_DATA_FLOAT, scalar, scalar, true);
  const int64_t dq_accum = gb.real(kUidDQAccum, "dQ_accum", CUDNN_DATA_FLOAT, bhsd, bhsd_strides);
  if (layout == SdpaBackwardLayout::legacy) g.tensors.back().reordering = CUDNN_TENSOR_REORDERING_F16x16;

  // D = rowsum(dO ⊙ O) · 1. The product's strides are the frontend's (it is virtual; the engine
  // recognises the pattern, not the layout).
  const int64_t do_o = gb.virt("dO*O", CUDNN_DATA_FLOAT, bhsd, {h * s * hd, s * hd, h * hd, 1});
  gb.pointwise("mul_dO_O", CUDNN_POINTWISE_MUL, d_o, o, do_o);
  const int64_t row_dot = gb.virt("rowsum(dO*O)", CUDNN_DATA_FLOAT, row_dims, row_strides);
  gb.reduction("reduce_dO_O", CUDNN_REDUCE_TENSOR_ADD, do_o, row_dot);
  const int64_t softmax_sum = real_softmax_sum
                                  ? gb.real(kUidSoftmaxSum, "softmax_sum", CUDNN_DATA_FLOAT, row_dims, row_strides)
                                  : gb.virt("softmax_sum", CUDNN_DATA_FLOAT, row_dims, row_strides);
  gb.pointwise("softmax_sum = D * 1", CUDNN_POINTWISE_MUL, row_dot, one, softmax_sum);

  // The causal mask, as in the forward: keep row >= col, elsewhere the by-value fill.
  const auto causal_mask = [&](int64_t scores) {
    const int64_t neg = gb.real(kUidNegInf, "masked_value", CUDNN_DATA_FLOAT, scalar, scalar, true);
    const int64_t row = gb.virt("row_index", CUDNN_DATA_INT32, ss, ss_strides);
    gb.pointwise("gen_row_index", CUDNN_POINTWISE_GEN_INDEX, scores, 0, row, CUDNN_DATA_INT32, 0, 2);
    const int64_t col = gb.virt("col_index", CUDNN_DATA_INT32, ss, ss_strides);
    gb.pointwise("gen_col_index", CUDNN_POINTWISE_GEN_INDEX, scores, 0, col, CUDNN_DATA_INT32, 0, 3);
    const int64_t keep = gb.virt("row>=col", CUDNN_DATA_BOOLEAN, ss, ss_strides);
    gb.pointwise("row_ge_col", CUDNN_POINTWISE_CMP_GE, row, col, keep, CUDNN_DATA_BOOLEAN);
    const int64_t masked = gb.virt("S_masked", CUDNN_DATA_FLOAT, ss, ss_strides);
    gb.pointwise("causal_select", CUDNN_POINTWISE_BINARY_SELECT, scores, neg, masked, CUDNN_DATA_FLOAT, keep);
    return masked;
  };

  // P = exp(S · scale − Stats), recomputed from the forward's statistics.
  const int64_t scores = gb.virt("S", CUDNN_DATA_FLOAT, ss, ss_strides);
  gb.matmul("matmul_Q_KT", q, k, scores);
  int64_t last = gb.virt("S*scale", CUDNN_DATA_FLOAT, ss, ss_strides);
  gb.pointwise("mul_s_attn_scale", CUDNN_POINTWISE_MUL, scores, scale, last);
  if (d.causal && !mask_after_stats) last = causal_mask(last);
  const int64_t shifted = gb.virt("S-Stats", CUDNN_DATA_FLOAT, ss, ss_strides);
  gb.pointwise("sub_s_stats", CUDNN_POINTWISE_SUB, last, stats, shifted);
  last = shifted;
  if (d.causal && mask_after_stats) last = causal_mask(last);
  const int64_t probs = gb.virt("P", CUDNN_DATA_FLOAT, ss, ss_strides);
  gb.pointwise("exp_s", CUDNN_POINTWISE_EXP, last, 0, probs);

  // dV = Pᵀ dO.
  const int64_t probs_t = gb.virt("P^T", io, ss, ss_t_strides);
  gb.reshape("reshape_p", probs, probs_t);
  gb.matmul("matmul_pT_dO", probs_t, d_o, dv);

  // dS = (dO Vᵀ [· 1] − D) ⊙ P · scale.
  const int64_t dp = gb.virt("dP", CUDNN_DATA_FLOAT, ss, ss_strides);
  gb.matmul("matmul_dO_VT", d_o, v, dp);
  last = dp;
  if (dp_times_one) {
    last = gb.virt("dP*1", CUDNN_DATA_FLOAT, ss, ss_strides);
    gb.pointwise("dP_dropout_mask", CUDNN_POINTWISE_MUL, dp, one, last);
  }
  const int64_t dp_minus = gb.virt("dP-D", CUDNN_DATA_FLOAT, ss, ss_strides);
  gb.pointwise("sub_dP_softmax_sum", CUDNN_POINTWISE_SUB, last, softmax_sum, dp_minus);
  const int64_t ds_unscaled = gb.virt("(dP-D)*P", CUDNN_DATA_FLOAT, ss, ss_strides);
  gb.pointwise("mul_dP_exp_s", CUDNN_POINTWISE_MUL, dp_minus, probs, ds_unscaled);
  const int64_t ds = gb.virt("dS", CUDNN_DATA_FLOAT, ss, ss_strides);
  gb.pointwise("mul_dS_attn_scale", CUDNN_POINTWISE_MUL, ds_unscaled, scale, ds);

  // dK = dSᵀ Q.
  const int64_t ds_t = gb.virt("dS^T", io, ss, ss_t_strides);
  gb.reshape("reshape_dS", ds, ds_t);
  gb.matmul("matmul_dST_Q", ds_t, q, dk);

  // dQ = dS K, accumulated in fp32, then converted. K's view is typed as the variant says (the
  // frontend leaves it to the graph's intermediate type, fp32).
  const cudnnDataType_t k_type = variant.k_type == SdpaKType::io ? io : CUDNN_DATA_FLOAT;
  const int64_t k_rows = gb.virt("K", k_type, bhsd, bhsd_strides);
  gb.reshape("reshape_k", k, k_rows);
  gb.matmul("matmul_dS_K", ds, k_rows, dq_accum);
  gb.pointwise("identity_dQ", CUDNN_POINTWISE_IDENTITY, dq_accum, 0, dq);
  return g;
}

// ---- lowering to backend descriptors ----------------------------------------------------------

namespace {

// One backend descriptor, destroyed with its owner.
class Desc {
 public:
  Desc() = default;
  Desc(cudnnBackendDescriptorType_t type, const char* what) { check(api().create_descriptor(type, &d_), what); }
  ~Desc() {
    if (d_) api().destroy_descriptor(d_);
  }
  Desc(Desc&& o) noexcept : d_(std::exchange(o.d_, nullptr)) {}
  Desc& operator=(Desc&& o) noexcept {
    if (this != &o) {
      if (d_) api().destroy_descriptor(d_);
      d_ = std::exchange(o.d_, nullptr);
    }
    return *this;
  }
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;

  cudnnBackendDescriptor_t get() const { return d_; }
  // Sets an attribute; a failure names the attribute (`what`).
  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count, const void* value,
           const std::string& what) {
    check(api().set_attribute(d_, name, type, count, value), ("cudnnBackendSetAttribute(" + what + ")").c_str());
  }
  void set_desc(cudnnBackendAttributeName_t name, const Desc& value, const std::string& what) {
    cudnnBackendDescriptor_t raw = value.get();
    set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &raw, what);
  }
  void finalize(const std::string& what) { check(api().finalize(d_), ("cudnnBackendFinalize(" + what + ")").c_str()); }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

// The operation-graph and execution-plan handle attributes are marked deprecated in cuDNN 9 headers
// but still accepted (and needed by older 9.x releases); named by value to keep -Werror quiet.
constexpr auto kOperationGraphHandle = static_cast<cudnnBackendAttributeName_t>(800);
constexpr auto kExecutionPlanHandle = static_cast<cudnnBackendAttributeName_t>(400);

Desc make_tensor(const TensorSpec& t) {
  const std::string what = "tensor " + t.name;
  Desc d(CUDNN_BACKEND_TENSOR_DESCRIPTOR, ("cudnnBackendCreateDescriptor(" + what + ")").c_str());
  const int64_t alignment = 16, rank = static_cast<int64_t>(t.dims.size());
  d.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &t.type, what + " data type");
  d.set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, rank, t.dims.data(), what + " dims");
  d.set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, rank, t.strides.data(), what + " strides");
  d.set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &t.uid, what + " uid");
  d.set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment, what + " alignment");
  const bool is_virtual = t.is_virtual, by_value = t.by_value;
  if (is_virtual) d.set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual, what + " virtual");
  if (by_value) d.set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value, what + " by value");
  if (t.reordering != CUDNN_TENSOR_REORDERING_NONE) {
    d.set(CUDNN_ATTR_TENSOR_REORDERING_MODE, CUDNN_TYPE_TENSOR_REORDERING_MODE, 1, &t.reordering, what + " reordering");
  }
  d.finalize(what);
  return d;
}

// An operation and the descriptor it points to (matmul/pointwise/reduction settings).
struct LoweredOp {
  Desc settings, op;
};

LoweredOp make_op(const OpSpec& s, const std::map<int64_t, Desc>& tensors) {
  const auto tensor = [&](int64_t uid) -> const Desc& {
    const auto it = tensors.find(uid);
    if (it == tensors.end()) throw std::logic_error(fmt::format("SDPA graph: op {} uses unknown uid {}", s.name, uid));
    return it->second;
  };
  const std::string what = "op " + s.name;
  const std::string create = "cudnnBackendCreateDescriptor(" + what + ")";
  LoweredOp l;
  switch (s.kind) {
    case OpKind::matmul:
      l.settings = Desc(CUDNN_BACKEND_MATMUL_DESCRIPTOR, create.c_str());
      l.settings.set(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &s.compute, what + " compute type");
      l.settings.finalize(what + " matmul settings");
      l.op = Desc(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, create.c_str());
      l.op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_ADESC, tensor(s.x), what + " A");
      l.op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_BDESC, tensor(s.b), what + " B");
      l.op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_CDESC, tensor(s.y), what + " C");
      l.op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_DESC, l.settings, what + " matmul desc");
      break;
    case OpKind::pointwise:
      l.settings = Desc(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, create.c_str());
      l.settings.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &s.pointwise, what + " mode");
      l.settings.set(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &s.compute, what + " precision");
      if (s.axis >= 0) l.settings.set(CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &s.axis, what + " axis");
      l.settings.finalize(what + " pointwise settings");
      l.op = Desc(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, create.c_str());
      l.op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, l.settings, what + " pointwise desc");
      l.op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, tensor(s.x), what + " x");
      if (s.b) l.op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, tensor(s.b), what + " b");
      if (s.t) l.op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_TDESC, tensor(s.t), what + " t");
      l.op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, tensor(s.y), what + " y");
      break;
    case OpKind::reduction:
      l.settings = Desc(CUDNN_BACKEND_REDUCTION_DESCRIPTOR, create.c_str());
      l.settings.set(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &s.reduction,
                     what + " operator");
      l.settings.set(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &s.compute, what + " compute type");
      l.settings.finalize(what + " reduction settings");
      l.op = Desc(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, create.c_str());
      l.op.set_desc(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, tensor(s.x), what + " x");
      l.op.set_desc(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, tensor(s.y), what + " y");
      l.op.set_desc(CUDNN_ATTR_OPERATION_REDUCTION_DESC, l.settings, what + " reduction desc");
      break;
    case OpKind::reshape:  // no settings descriptor
      l.op = Desc(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, create.c_str());
      l.op.set_desc(CUDNN_ATTR_OPERATION_RESHAPE_XDESC, tensor(s.x), what + " x");
      l.op.set_desc(CUDNN_ATTR_OPERATION_RESHAPE_YDESC, tensor(s.y), what + " y");
      break;
  }
  l.op.finalize(what);
  return l;
}

// The tensors and operations of a graph as finalized descriptors.
struct Lowered {
  std::map<int64_t, Desc> tensors;
  std::vector<LoweredOp> ops;
};

Lowered lower(const SdpaGraph& g) {
  Lowered l;
  for (const auto& t : g.tensors) l.tensors.emplace(t.uid, make_tensor(t));
  for (const auto& op : g.ops) l.ops.push_back(make_op(op, l.tensors));
  return l;
}

const char* heur_mode_name(cudnnBackendHeurMode_t m) { return m == CUDNN_HEUR_MODE_A ? "A" : "fallback"; }

// A cuDNN handle, destroyed after everything built with it (declare it first).
struct Handle {
  cudnnHandle_t h = nullptr;
  Handle() { check(api().create(&h), "cudnnCreate"); }  // throws "cuDNN not available: ..." first
  ~Handle() {
    if (h) api().destroy(h);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
};

// One graph lowered, its execution plan, and a variant pack per set of pointers (one per
// L2-rotation input set). Members are destroyed packs first, descriptors before what they point to.
struct Executable {
  Lowered lowered;
  Desc graph, plan;
  int64_t workspace = 0;
  std::string chosen;
  std::vector<std::pair<std::vector<void*>, Desc>> packs;

  // Releases everything, each descriptor before the ones it points to.
  void reset() {
    packs.clear();
    plan = Desc();
    graph = Desc();
    lowered = Lowered();
    workspace = 0;
    chosen.clear();
  }

  // Lowers `g`, asks the heuristics (mode A, then fallback) and keeps the first configuration that
  // finalizes. Throws naming the call and status; when nothing finalizes, "cuDNN: no engine accepted
  // the SDPA <what> graph (...)" with every attempt.
  void build(cudnnHandle_t handle, const SdpaGraph& g, const std::string& what, const kernels::AttentionDims& dims) {
    lowered = lower(g);
    graph = Desc(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "cudnnBackendCreateDescriptor(operation graph)");
    std::vector<cudnnBackendDescriptor_t> raw;
    for (const auto& op : lowered.ops) raw.push_back(op.op.get());
    graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, static_cast<int64_t>(raw.size()),
              raw.data(), "operation graph ops");
    graph.set(kOperationGraphHandle, CUDNN_TYPE_HANDLE, 1, &handle, "operation graph handle");
    graph.finalize("operation graph");
    choose_plan(handle, what, dims);
  }

  void choose_plan(cudnnHandle_t handle, const std::string& what, const kernels::AttentionDims& dims) {
    std::string attempts;
    for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
      const std::string tag = fmt::format("heuristics mode {}", heur_mode_name(mode));
      Desc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, "cudnnBackendCreateDescriptor(engine heuristics)");
      heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph, tag + " graph");
      heur.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, tag + " mode");
      const cudnnStatus_t fin = api().finalize(heur.get());
      if (fin != CUDNN_STATUS_SUCCESS) {
        attempts += fmt::format("; {}: cudnnBackendFinalize: {}", tag, status_text(fin));
        continue;
      }
      int64_t count = 0;
      check(api().get_attribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                nullptr),
            ("cudnnBackendGetAttribute(" + tag + " result count)").c_str());
      if (count <= 0) {
        attempts += fmt::format("; {}: no engine configuration", tag);
        continue;
      }
      std::vector<Desc> configs;
      std::vector<cudnnBackendDescriptor_t> raw;
      for (int64_t i = 0; i < count; ++i) {
        configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, "cudnnBackendCreateDescriptor(engine config)");
        raw.push_back(configs.back().get());
      }
      int64_t returned = 0;
      check(api().get_attribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count,
                                &returned, raw.data()),
            ("cudnnBackendGetAttribute(" + tag + " results)").c_str());
      for (int64_t i = 0; i < returned; ++i) {
        Desc candidate(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, "cudnnBackendCreateDescriptor(execution plan)");
        candidate.set(kExecutionPlanHandle, CUDNN_TYPE_HANDLE, 1, &handle, "execution plan handle");
        candidate.set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, configs[static_cast<std::size_t>(i)],
                           "execution plan engine config");
        const cudnnStatus_t st = api().finalize(candidate.get());
        if (st != CUDNN_STATUS_SUCCESS) {
          attempts += fmt::format("; {} config {}: {}", tag, i + 1, status_text(st));
          continue;
        }
        int64_t n = 0;
        check(api().get_attribute(candidate.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n,
                                  &workspace),
              "cudnnBackendGetAttribute(execution plan workspace size)");
        chosen = fmt::format("cuDNN {} engine {} (config {} of {}, {})", version_string(),
                             engine_index(configs[static_cast<std::size_t>(i)]), i + 1, returned, tag);
        plan = std::move(candidate);
        return;
      }
    }
    throw std::runtime_error(
        fmt::format("cuDNN: no engine accepted the SDPA {} graph (b={} h={} s={} d={} causal={}){}", what, dims.batch,
                    dims.heads, dims.seq, dims.head_dim, dims.causal ? 1 : 0, attempts));
  }

  // The engine's global index, for the label; "?" when cuDNN does not say.
  static std::string engine_index(const Desc& config) {
    cudnnBackendDescriptor_t engine = nullptr;
    if (api().create_descriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &engine) != CUDNN_STATUS_SUCCESS) return "?";
    std::string out = "?";
    int64_t n = 0, index = -1;
    if (api().get_attribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &engine) ==
            CUDNN_STATUS_SUCCESS &&
        api().get_attribute(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &index) ==
            CUDNN_STATUS_SUCCESS) {
      out = std::to_string(index);
    }
    api().destroy_descriptor(engine);
    return out;
  }

  // The variant pack binding `uids` to `data` (device pointers and by-value host scalars) and the
  // workspace, built once per distinct `data` (the scalars' addresses never change).
  const Desc& pack_for(const std::vector<int64_t>& uids, const std::vector<void*>& data, void* ws) {
    std::vector<void*> key = data;
    key.push_back(ws);
    for (const auto& p : packs) {
      if (p.first == key) return p.second;
    }
    Desc pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, "cudnnBackendCreateDescriptor(variant pack)");
    pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, static_cast<int64_t>(uids.size()), uids.data(),
             "variant pack uids");
    pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, static_cast<int64_t>(data.size()), data.data(),
             "variant pack pointers");
    pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws, "variant pack workspace");
    pack.finalize("variant pack");
    packs.emplace_back(std::move(key), std::move(pack));
    return packs.back().second;
  }

  void execute(cudnnHandle_t handle, cudaStream_t stream, const Desc& pack, const char* call) const {
    check(api().set_stream(handle, stream), "cudnnSetStream");
    check(api().execute(handle, plan.get(), pack.get()), call);
  }
};

// The by-value scalars both passes bind: the softmax scale and the causal fill value.
struct Scalars {
  float scale = 1, masked_value = 0, one = 1;
  explicit Scalars(const kernels::AttentionDims& dims)
      : scale(static_cast<float>(1.0 / std::sqrt(static_cast<double>(dims.head_dim)))),
        // cuDNN's frontend masks with the lowest float before 9.10 and with -inf from then on.
        masked_value(version() < 91000 ? std::numeric_limits<float>::lowest()
                                       : -std::numeric_limits<float>::infinity()) {}
};

}  // namespace

// ---- forward ----------------------------------------------------------------------------------

struct SdpaForward::Impl {
  DType dtype;
  kernels::AttentionDims dims;
  Handle handle;  // first: destroyed last
  Scalars scalars;
  Executable exe;

  Impl(DType dt, const kernels::AttentionDims& d) : dtype(dt), dims(d), scalars(d) {
    exe.build(handle.h, sdpa_forward_graph(dtype, dims), "forward", dims);
  }
};

std::size_t build_graph_descriptors(const SdpaGraph& graph) {
  const Lowered l = lower(graph);
  std::size_t count = l.tensors.size();
  for (const auto& op : l.ops) count += op.settings.get() ? 2 : 1;
  return count;
}

SdpaForward::SdpaForward(DType dtype, const kernels::AttentionDims& dims)
    : impl_(std::make_unique<Impl>(dtype, dims)) {}

SdpaForward::~SdpaForward() = default;

std::size_t SdpaForward::workspace_bytes() const { return static_cast<std::size_t>(impl_->exe.workspace); }

std::string SdpaForward::describe() const { return impl_->exe.chosen; }

void SdpaForward::run(cudaStream_t stream, const void* q, const void* k, const void* v, void* o, float* stats,
                      void* workspace) {
  Impl& m = *impl_;
  if (m.exe.workspace > 0 && !workspace) throw std::runtime_error("cuDNN SDPA: workspace missing");
  std::vector<int64_t> uids = {kUidQ, kUidK, kUidV, kUidO, kUidStats, kUidScale};
  std::vector<void*> data = {const_cast<void*>(q), const_cast<void*>(k), const_cast<void*>(v), o, stats,
                             &m.scalars.scale};
  if (m.dims.causal) {
    uids.push_back(kUidNegInf);
    data.push_back(&m.scalars.masked_value);
  }
  m.exe.execute(m.handle.h, stream, m.exe.pack_for(uids, data, workspace), "cudnnBackendExecute(SDPA forward)");
}

// ---- backward ---------------------------------------------------------------------------------

namespace {

std::size_t dq_accum_bytes(const kernels::AttentionDims& d) {
  return static_cast<std::size_t>(d.rows()) * static_cast<std::size_t>(d.head_dim) * sizeof(float);
}
std::size_t softmax_sum_bytes(const kernels::AttentionDims& d) {
  return static_cast<std::size_t>(d.rows()) * sizeof(float);
}

}  // namespace

struct SdpaBackward::Impl {
  DType dtype;
  kernels::AttentionDims dims;
  Handle handle;  // first: destroyed last
  Scalars scalars;
  Executable exe;
  SdpaBackwardVariant variant;
  // Our part of the workspace, after the engine's: [engine | dQ_accum | softmax_sum (where real)].
  std::size_t engine_bytes = 0, dq_accum_offset = 0, softmax_sum_offset = 0, total = 0;
  bool zero_dq_accum = false;

  Impl(DType dt, const kernels::AttentionDims& d) : dtype(dt), dims(d), scalars(d) {
    std::string failures;
    for (const SdpaBackwardVariant& candidate : sdpa_backward_attempts()) {
      const std::string name = sdpa_backward_variant_name(candidate);
      try {
        exe.build(handle.h, sdpa_backward_graph(dtype, dims, candidate), "backward (" + name + " layout)", dims);
        variant = candidate;
        place_scratch();
        return;
      } catch (const std::runtime_error& e) {
        failures += fmt::format("{}[{} layout] {}", failures.empty() ? "" : " | ", name, e.what());
        exe.reset();
      }
    }
    throw std::runtime_error("cuDNN SDPA backward: no graph layout was accepted: " + failures);
  }

  void place_scratch() {
    engine_bytes = align_up(static_cast<std::size_t>(exe.workspace));
    dq_accum_offset = engine_bytes;
    total = dq_accum_offset + align_up(dq_accum_bytes(dims));
    if (sdpa_backward_has_real_softmax_sum(variant.layout)) {
      softmax_sum_offset = total;
      total += align_up(softmax_sum_bytes(dims));
    }
    // cuDNN's frontend zeroes the dQ accumulator itself before cuDNN 9.6; from 9.6 the engine does.
    zero_dq_accum = version() < 90600;
  }
};

SdpaBackward::SdpaBackward(DType dtype, const kernels::AttentionDims& dims)
    : impl_(std::make_unique<Impl>(dtype, dims)) {}

SdpaBackward::~SdpaBackward() = default;

std::size_t SdpaBackward::scratch_bytes(const kernels::AttentionDims& dims) {
  return align_up(dq_accum_bytes(dims)) + align_up(softmax_sum_bytes(dims));
}

std::size_t SdpaBackward::workspace_bytes() const { return impl_->total; }

SdpaBackwardLayout SdpaBackward::layout() const { return impl_->variant.layout; }

SdpaBackwardVariant SdpaBackward::variant() const { return impl_->variant; }

std::string SdpaBackward::describe() const {
  return fmt::format("{}, {} graph layout", impl_->exe.chosen, sdpa_backward_variant_name(impl_->variant));
}

void SdpaBackward::run(cudaStream_t stream, const void* q, const void* k, const void* v, const void* o,
                       const float* stats, const void* d_o, void* dq, void* dk, void* dv, void* workspace) {
  Impl& m = *impl_;
  if (!workspace) throw std::runtime_error("cuDNN SDPA backward: workspace missing");
  char* ws = static_cast<char*>(workspace);
  void* dq_accum = ws + m.dq_accum_offset;
  if (m.zero_dq_accum) {
    const cudaError_t err = cudaMemsetAsync(dq_accum, 0, dq_accum_bytes(m.dims), stream);
    if (err != cudaSuccess) {
      throw std::runtime_error(
          fmt::format("cuDNN SDPA backward: cudaMemsetAsync(dQ_accum) failed: {}", cudaGetErrorString(err)));
    }
  }
  const auto in = [](const void* p) { return const_cast<void*>(p); };
  std::vector<int64_t> uids = {kUidQ,  kUidK,  kUidV,  kUidO,   kUidStats, kUidDO,
                               kUidDQ, kUidDK, kUidDV, kUidOne, kUidScale, kUidDQAccum};
  std::vector<void*> data = {in(q), in(k), in(v), in(o),          in(stats),        in(d_o),
                             dq,    dk,    dv,    &m.scalars.one, &m.scalars.scale, dq_accum};
  if (sdpa_backward_has_real_softmax_sum(m.variant.layout)) {
    uids.push_back(kUidSoftmaxSum);
    data.push_back(ws + m.softmax_sum_offset);
  }
  if (m.dims.causal) {
    uids.push_back(kUidNegInf);
    data.push_back(&m.scalars.masked_value);
  }
  // The engine's own workspace is the front of ours.
  m.exe.execute(m.handle.h, stream, m.exe.pack_for(uids, data, workspace), "cudnnBackendExecute(SDPA backward)");
}

}  // namespace wflops::cudnn
