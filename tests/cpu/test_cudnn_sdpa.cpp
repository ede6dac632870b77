// cuDNN's fused attention without a GPU: the loader's answer, the forward and backward graphs as data
// (hand-checked dims and strides, a well-formed data flow), its lowering to backend descriptors
// (cuDNN builds tensor and operation descriptors without a device), a clear error where a handle
// cannot be created, and the registered benchmarks.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "all_benchmarks.hpp"
#include "cuda/attention_workload.hpp"
#include "cuda/cudnn_loader.hpp"
#include "cuda/cudnn_sdpa.hpp"

namespace wflops {

namespace {

bool has_gpu() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

std::vector<int64_t> v(std::initializer_list<int64_t> x) { return x; }

int count_ops(const cudnn::SdpaGraph& g, cudnnPointwiseMode_t mode) {
  return static_cast<int>(std::count_if(g.ops.begin(), g.ops.end(), [&](const cudnn::OpSpec& op) {
    return op.kind == cudnn::OpKind::pointwise && op.pointwise == mode;
  }));
}

const cudnn::OpSpec& op_named(const cudnn::SdpaGraph& g, const std::string& name) {
  for (const auto& op : g.ops) {
    if (op.name == name) return op;
  }
  throw std::logic_error("no op " + name);
}

// Uids unique; every operand exists and is a real tensor or produced by an earlier op; every tensor
// produced at most once; every virtual tensor produced and consumed; matmul operands have
// matching batch dims and inner sizes ([.., m, k] x [.., k, n] -> [.., m, n]).
void expect_well_formed(const cudnn::SdpaGraph& g, const std::string& what) {
  std::set<int64_t> uids;
  for (const auto& t : g.tensors) {
    EXPECT_TRUE(uids.insert(t.uid).second) << what << ": duplicate uid " << t.uid;
  }
  std::set<int64_t> produced, consumed;
  for (const auto& op : g.ops) {
    for (int64_t in : {op.x, op.b, op.t}) {
      if (!in) continue;
      const auto& t = g.tensor(in);
      EXPECT_TRUE(!t.is_virtual || produced.count(in))
          << what << ": " << op.name << " reads " << t.name << " before it is made";
      consumed.insert(in);
    }
    EXPECT_TRUE(produced.insert(op.y).second) << what << ": " << g.tensor(op.y).name << " written twice";
    if (op.kind == cudnn::OpKind::matmul) {
      const auto &a = g.tensor(op.x).dims, &b = g.tensor(op.b).dims, &y = g.tensor(op.y).dims;
      ASSERT_EQ(a.size(), 4u);
      EXPECT_EQ(a[3], b[2]) << what << ": " << op.name << " inner sizes";
      EXPECT_EQ(y, v({a[0], a[1], a[2], b[3]})) << what << ": " << op.name;
      EXPECT_EQ(v({a[0], a[1]}), v({b[0], b[1]})) << what << ": " << op.name << " batch dims";
    }
  }
  for (const auto& t : g.tensors) {
    if (t.is_virtual) {
      EXPECT_TRUE(produced.count(t.uid) && consumed.count(t.uid)) << what << ": " << t.name;
      EXPECT_GE(t.uid, cudnn::kFirstVirtualUid) << what << ": " << t.name;
    } else {
      EXPECT_LT(t.uid, cudnn::kFirstVirtualUid) << what << ": " << t.name;
    }
  }
}

}  // namespace

TEST(CudnnLoader, LoadsVersionNineOrSaysWhyNot) {
  const std::string why = cudnn::unavailable_reason();
  if (why.empty()) {
    EXPECT_EQ(cudnn::version() / 10000, 9u);
    EXPECT_EQ(cudnn::version_string().rfind("9.", 0), 0u) << cudnn::version_string();
    // The status text carries cuDNN's own name for the status.
    EXPECT_NE(cudnn::status_text(CUDNN_STATUS_NOT_SUPPORTED).find("CUDNN_STATUS_NOT_SUPPORTED"), std::string::npos);
    EXPECT_NO_THROW(cudnn::check(CUDNN_STATUS_SUCCESS, "nothing"));
    try {
      cudnn::check(CUDNN_STATUS_BAD_PARAM, "cudnnSomething(x)");
      FAIL() << "a bad status did not throw";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("cuDNN: cudnnSomething(x) failed: CUDNN_STATUS_BAD_PARAM", 0), 0u)
          << e.what();
    }
  } else {
    EXPECT_EQ(why.rfind("cuDNN not available: ", 0), 0u) << why;
    EXPECT_THROW(cudnn::api(), std::runtime_error);
  }
}

TEST(CudnnSdpaGraph, ShapesAndStridesAreHandChecked) {
  // b=2, h=3, s=5, d=8: a [s][d] slice is 40 elements, a batch element 120.
  const cudnn::SdpaGraph g = cudnn::sdpa_forward_graph(DType::bf16, {2, 3, 5, 8, false});
  const auto& q = g.tensor(cudnn::kUidQ);
  EXPECT_EQ(q.dims, v({2, 3, 5, 8}));
  EXPECT_EQ(q.strides, v({120, 40, 8, 1}));
  EXPECT_EQ(q.type, CUDNN_DATA_BFLOAT16);
  // Kᵀ: the same memory read as [b, h, d, s]: stepping d moves 1, stepping s moves d = 8.
  const auto& k = g.tensor(cudnn::kUidK);
  EXPECT_EQ(k.dims, v({2, 3, 8, 5}));
  EXPECT_EQ(k.strides, v({120, 40, 1, 8}));
  // Stats = L: fp32 [b, h, s, 1], contiguous like wflops' [b, h, s] L.
  const auto& stats = g.tensor(cudnn::kUidStats);
  EXPECT_EQ(stats.dims, v({2, 3, 5, 1}));
  EXPECT_EQ(stats.strides, v({15, 5, 1, 1}));
  EXPECT_EQ(stats.type, CUDNN_DATA_FLOAT);
  EXPECT_FALSE(stats.is_virtual);
  EXPECT_TRUE(g.tensor(cudnn::kUidScale).by_value);
  EXPECT_EQ(g.tensor(cudnn::kUidO).type, CUDNN_DATA_BFLOAT16);
  EXPECT_EQ(cudnn::sdpa_forward_graph(DType::fp16, {1, 1, 64, 64, false}).tensor(cudnn::kUidO).type, CUDNN_DATA_HALF);
  // No mask without causal: 2 matmuls, scale, sub, exp, log, add, div, 2 reductions.
  EXPECT_EQ(g.ops.size(), 10u);
  // bmm2 O = P V reads P in the I/O type (what the fused engines require of its A operand); every
  // other intermediate is fp32.
  for (DType dtype : {DType::bf16, DType::fp16}) {
    const cudnnDataType_t io = dtype == DType::bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
    const cudnn::SdpaGraph gd = cudnn::sdpa_forward_graph(dtype, {2, 3, 5, 8, true});
    const auto& bmm2 = op_named(gd, "bmm2 O = P V");
    EXPECT_EQ(bmm2.kind, cudnn::OpKind::matmul);
    EXPECT_EQ(bmm2.x, op_named(gd, "div").y);
    EXPECT_EQ(bmm2.b, cudnn::kUidV);
    const auto& p = gd.tensor(bmm2.x);
    EXPECT_TRUE(p.is_virtual);
    EXPECT_EQ(p.type, io) << dtype_name(dtype);
    EXPECT_EQ(gd.tensor(cudnn::kUidV).type, io);
    for (const auto& t : gd.tensors) {
      if (!t.is_virtual || t.uid == bmm2.x) continue;
      EXPECT_TRUE(t.type == CUDNN_DATA_FLOAT || t.type == CUDNN_DATA_INT32 || t.type == CUDNN_DATA_BOOLEAN) << t.name;
    }
    EXPECT_EQ(gd.tensor(op_named(gd, "bmm1 S = Q K^T").y).type, CUDNN_DATA_FLOAT);
  }
  EXPECT_THROW(g.tensor(cudnn::kUidNegInf), std::logic_error);
}

TEST(CudnnSdpaGraph, DataFlowIsWellFormed) {
  for (bool causal : {false, true}) {
    const cudnn::SdpaGraph g = cudnn::sdpa_forward_graph(DType::bf16, {1, 2, 100, 64, causal});
    expect_well_formed(g, causal ? "forward causal" : "forward");
    std::set<int64_t> produced;
    for (const auto& op : g.ops) produced.insert(op.y);
    EXPECT_TRUE(produced.count(cudnn::kUidO) && produced.count(cudnn::kUidStats));
    // Reductions run over the keys: their outputs are [b, h, s, 1].
    for (const auto& op : g.ops) {
      if (op.kind == cudnn::OpKind::reduction) {
        EXPECT_EQ(g.tensor(op.y).dims, v({1, 2, 100, 1})) << op.name;
      }
    }
    EXPECT_EQ(count_ops(g, CUDNN_POINTWISE_GEN_INDEX), causal ? 2 : 0);
    EXPECT_EQ(count_ops(g, CUDNN_POINTWISE_BINARY_SELECT), causal ? 1 : 0);
    EXPECT_EQ(g.ops.size(), causal ? 14u : 10u);
  }
  // The causal select keeps S where row >= col (t) and writes the by-value fill elsewhere (b).
  const cudnn::SdpaGraph g = cudnn::sdpa_forward_graph(DType::bf16, {1, 1, 64, 64, true});
  std::map<int64_t, const cudnn::OpSpec*> maker;
  for (const auto& op : g.ops) maker[op.y] = &op;
  for (const auto& op : g.ops) {
    if (op.kind != cudnn::OpKind::pointwise || op.pointwise != CUDNN_POINTWISE_BINARY_SELECT) continue;
    EXPECT_EQ(op.b, cudnn::kUidNegInf);
    EXPECT_TRUE(g.tensor(op.b).by_value);
    const cudnn::OpSpec* cmp = maker.at(op.t);
    EXPECT_EQ(cmp->pointwise, CUDNN_POINTWISE_CMP_GE);
    EXPECT_EQ(maker.at(cmp->x)->axis, 2);  // row index >= ...
    EXPECT_EQ(maker.at(cmp->b)->axis, 3);  // ... column index
    EXPECT_EQ(g.tensor(op.t).type, CUDNN_DATA_BOOLEAN);
  }
}

TEST(CudnnSdpaGraph, RefusesShapesNoEngineTakes) {
  EXPECT_EQ(cudnn::sdpa_unsupported_reason(DType::bf16, {4, 16, 4096, 128, false}), "");
  EXPECT_NE(cudnn::sdpa_unsupported_reason(DType::bf16, {1, 1, 64, 60, false}).find("multiple of 8"),
            std::string::npos);
  EXPECT_NE(cudnn::sdpa_unsupported_reason(DType::fp32, {1, 1, 64, 64, false}), "");
  EXPECT_THROW(cudnn::sdpa_forward_graph(DType::bf16, {1, 1, 64, 512, false}), std::runtime_error);
  EXPECT_EQ(
      attention_unsupported_reason({AttentionImpl::cudnn, AttentionPass::backward, DType::bf16, {1, 1, 64, 64, false}}),
      "");
  EXPECT_NE(
      attention_unsupported_reason({AttentionImpl::cudnn, AttentionPass::backward, DType::bf16, {1, 1, 64, 60, false}}),
      "");
  EXPECT_THROW(cudnn::sdpa_backward_graph(DType::fp32, {1, 1, 64, 64, false}), std::runtime_error);
}

// ---- backward --------------------------------------------------------------------------------

const cudnn::SdpaBackwardLayout kLayouts[] = {
    cudnn::SdpaBackwardLayout::current, cudnn::SdpaBackwardLayout::frontend_1_8, cudnn::SdpaBackwardLayout::legacy};

cudnn::SdpaBackwardVariant variant(cudnn::SdpaBackwardLayout layout,
                                   cudnn::SdpaKType k_type = cudnn::SdpaKType::intermediate) {
  return {layout, k_type};
}

TEST(CudnnSdpaBackwardGraph, TriesEveryLayoutWithTheFrontendsKTypeFirst) {
  const auto& attempts = cudnn::sdpa_backward_attempts();
  ASSERT_EQ(attempts.size(), 4u);
  // Newest layout first; each layout once with K typed as every frontend types it (fp32), before the
  // one variant with K in the I/O type.
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(attempts[i].layout, kLayouts[i]) << i;
    EXPECT_EQ(attempts[i].k_type, cudnn::SdpaKType::intermediate) << i;
  }
  EXPECT_EQ(attempts[3].layout, cudnn::SdpaBackwardLayout::current);
  EXPECT_EQ(attempts[3].k_type, cudnn::SdpaKType::io);
  std::set<std::string> names;
  for (const auto& a : attempts) names.insert(cudnn::sdpa_backward_variant_name(a));
  EXPECT_EQ(names, (std::set<std::string>{"current", "frontend-1.8", "legacy", "current, K in io type"}));
  EXPECT_TRUE(cudnn::sdpa_backward_has_real_softmax_sum(cudnn::SdpaBackwardLayout::current));
  EXPECT_TRUE(cudnn::sdpa_backward_has_real_softmax_sum(cudnn::SdpaBackwardLayout::frontend_1_8));
  EXPECT_FALSE(cudnn::sdpa_backward_has_real_softmax_sum(cudnn::SdpaBackwardLayout::legacy));
}

TEST(CudnnSdpaBackwardGraph, ReshapedKIsFp32UnlessAskedForTheIoType) {
  for (auto layout : kLayouts) {
    const std::string what = cudnn::sdpa_backward_layout_name(layout);
    for (DType dtype : {DType::bf16, DType::fp16}) {
      const cudnnDataType_t io = dtype == DType::bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
      const cudnn::SdpaGraph frontend = cudnn::sdpa_backward_graph(dtype, {2, 3, 5, 8, false}, variant(layout));
      const auto& k = frontend.tensor(op_named(frontend, "reshape_k").y);
      EXPECT_TRUE(k.is_virtual) << what;
      EXPECT_EQ(k.type, CUDNN_DATA_FLOAT) << what;
      EXPECT_EQ(frontend.tensor(cudnn::kUidK).type, io) << what;
      const cudnn::SdpaGraph io_k =
          cudnn::sdpa_backward_graph(dtype, {2, 3, 5, 8, false}, variant(layout, cudnn::SdpaKType::io));
      EXPECT_EQ(io_k.tensor(op_named(io_k, "reshape_k").y).type, io) << what;
      // Only that tensor differs.
      ASSERT_EQ(io_k.tensors.size(), frontend.tensors.size());
      int differ = 0;
      for (std::size_t i = 0; i < io_k.tensors.size(); ++i) {
        differ += io_k.tensors[i].type != frontend.tensors[i].type;
      }
      EXPECT_EQ(differ, 1) << what;
    }
  }
}

TEST(CudnnSdpaBackwardGraph, ShapesAndStridesAreHandChecked) {
  // b=2, h=3, s=5, d=8: a [s][d] slice is 40 elements, a batch element 120; a score slice 25.
  for (auto layout : kLayouts) {
    const std::string what = cudnn::sdpa_backward_layout_name(layout);
    const cudnn::SdpaGraph g = cudnn::sdpa_backward_graph(DType::bf16, {2, 3, 5, 8, false}, variant(layout));
    for (int64_t uid : {cudnn::kUidQ, cudnn::kUidO, cudnn::kUidDO, cudnn::kUidDQ, cudnn::kUidDK, cudnn::kUidDV}) {
      const auto& t = g.tensor(uid);
      EXPECT_EQ(t.dims, v({2, 3, 5, 8})) << what << " " << t.name;
      EXPECT_EQ(t.strides, v({120, 40, 8, 1})) << what << " " << t.name;
      EXPECT_EQ(t.type, CUDNN_DATA_BFLOAT16) << what << " " << t.name;
      EXPECT_FALSE(t.is_virtual || t.by_value) << what << " " << t.name;
    }
    // Kᵀ and Vᵀ: [b, h, d, s] read from the [b, h, s, d] buffers.
    for (int64_t uid : {cudnn::kUidK, cudnn::kUidV}) {
      EXPECT_EQ(g.tensor(uid).dims, v({2, 3, 8, 5})) << what;
      EXPECT_EQ(g.tensor(uid).strides, v({120, 40, 1, 8})) << what;
    }
    EXPECT_EQ(g.tensor(cudnn::kUidStats).dims, v({2, 3, 5, 1}));
    EXPECT_EQ(g.tensor(cudnn::kUidStats).strides, v({15, 5, 1, 1}));
    // The fp32 dQ accumulator: real, [b, h, s, d] contiguous; F16x16-reordered in the legacy layout.
    const auto& acc = g.tensor(cudnn::kUidDQAccum);
    EXPECT_EQ(acc.type, CUDNN_DATA_FLOAT);
    EXPECT_FALSE(acc.is_virtual);
    EXPECT_EQ(acc.dims, v({2, 3, 5, 8}));
    EXPECT_EQ(acc.strides, v({120, 40, 8, 1}));
    EXPECT_EQ(acc.reordering, layout == cudnn::SdpaBackwardLayout::legacy ? CUDNN_TENSOR_REORDERING_F16x16
                                                                          : CUDNN_TENSOR_REORDERING_NONE);
    EXPECT_TRUE(g.tensor(cudnn::kUidOne).by_value);
    EXPECT_TRUE(g.tensor(cudnn::kUidScale).by_value);
    // Pᵀ and dSᵀ: the [s, s] scores read transposed (stepping a key moves 1, a query 5), in bf16.
    for (const char* reshape : {"reshape_p", "reshape_dS"}) {
      const auto& op = op_named(g, reshape);
      EXPECT_EQ(op.kind, cudnn::OpKind::reshape);
      const auto &x = g.tensor(op.x), &y = g.tensor(op.y);
      EXPECT_EQ(x.strides, v({75, 25, 5, 1})) << what << " " << reshape;
      EXPECT_EQ(x.type, CUDNN_DATA_FLOAT) << what << " " << reshape;
      EXPECT_EQ(y.dims, v({2, 3, 5, 5})) << what << " " << reshape;
      EXPECT_EQ(y.strides, v({75, 25, 1, 5})) << what << " " << reshape;
      EXPECT_EQ(y.type, CUDNN_DATA_BFLOAT16) << what << " " << reshape;
    }
    // K for dQ = dS K: Kᵀ reshaped back to the buffer's own [b, h, s, d] layout.
    const auto& rk = op_named(g, "reshape_k");
    EXPECT_EQ(rk.x, cudnn::kUidK);
    EXPECT_EQ(g.tensor(rk.y).dims, v({2, 3, 5, 8}));
    EXPECT_EQ(g.tensor(rk.y).strides, v({120, 40, 8, 1}));
    // Which matmul writes which gradient, from which operands.
    const auto& mdv = op_named(g, "matmul_pT_dO");
    EXPECT_EQ(mdv.x, op_named(g, "reshape_p").y);
    EXPECT_EQ(mdv.b, cudnn::kUidDO);
    EXPECT_EQ(mdv.y, cudnn::kUidDV);
    const auto& mdk = op_named(g, "matmul_dST_Q");
    EXPECT_EQ(mdk.x, op_named(g, "reshape_dS").y);
    EXPECT_EQ(mdk.b, cudnn::kUidQ);
    EXPECT_EQ(mdk.y, cudnn::kUidDK);
    const auto& mdq = op_named(g, "matmul_dS_K");
    EXPECT_EQ(mdq.x, op_named(g, "reshape_dS").x);
    EXPECT_EQ(mdq.b, rk.y);
    EXPECT_EQ(mdq.y, cudnn::kUidDQAccum);
    const auto& id = op_named(g, "identity_dQ");
    EXPECT_EQ(id.pointwise, CUDNN_POINTWISE_IDENTITY);
    EXPECT_EQ(id.x, cudnn::kUidDQAccum);
    EXPECT_EQ(id.y, cudnn::kUidDQ);
    // dP = dO Vᵀ; dS = (dP − D) ⊙ P · scale, with P the exp that feeds Pᵀ.
    const auto& mdp = op_named(g, "matmul_dO_VT");
    EXPECT_EQ(mdp.x, cudnn::kUidDO);
    EXPECT_EQ(mdp.b, cudnn::kUidV);
    EXPECT_EQ(op_named(g, "mul_dP_exp_s").b, op_named(g, "reshape_p").x);
    EXPECT_EQ(op_named(g, "mul_dS_attn_scale").b, cudnn::kUidScale);
    EXPECT_EQ(op_named(g, "sub_s_stats").b, cudnn::kUidStats);
    // D = rowsum(dO ⊙ O) · 1: real fp32 [b, h, s, 1] from frontend 1.8 on, virtual in the legacy layout.
    const auto& sum = g.tensor(op_named(g, "softmax_sum = D * 1").y);
    EXPECT_EQ(sum.dims, v({2, 3, 5, 1}));
    EXPECT_EQ(sum.type, CUDNN_DATA_FLOAT);
    EXPECT_EQ(sum.is_virtual, layout == cudnn::SdpaBackwardLayout::legacy) << what;
    if (!sum.is_virtual) {
      EXPECT_EQ(sum.uid, cudnn::kUidSoftmaxSum);
      EXPECT_EQ(sum.strides, v({15, 5, 1, 1}));
    }
    const auto& sub_d = op_named(g, "sub_dP_softmax_sum");
    EXPECT_EQ(sub_d.b, sum.uid);
    // dP · 1 (the frontend's no-dropout mask) before frontend 1.11; dP as is in the current layout.
    if (layout == cudnn::SdpaBackwardLayout::current) {
      EXPECT_EQ(sub_d.x, mdp.y) << what;
      EXPECT_THROW(op_named(g, "dP_dropout_mask"), std::logic_error) << what;
    } else {
      const auto& times_one = op_named(g, "dP_dropout_mask");
      EXPECT_EQ(times_one.x, mdp.y) << what;
      EXPECT_EQ(times_one.b, cudnn::kUidOne) << what;
      EXPECT_EQ(sub_d.x, times_one.y) << what;
    }
  }
  EXPECT_EQ(cudnn::sdpa_backward_graph(DType::fp16, {1, 1, 64, 64, false}).tensor(cudnn::kUidDK).type, CUDNN_DATA_HALF);
}

TEST(CudnnSdpaBackwardGraph, DataFlowIsWellFormedAndCausalAddsTheMask) {
  for (auto layout : kLayouts) {
    for (bool causal : {false, true}) {
      const std::string what = cudnn::sdpa_backward_layout_name(layout) + (causal ? " causal" : "");
      const cudnn::SdpaGraph g = cudnn::sdpa_backward_graph(DType::bf16, {1, 2, 100, 64, causal}, variant(layout));
      expect_well_formed(g, what);
      std::set<int64_t> produced;
      for (const auto& op : g.ops) produced.insert(op.y);
      for (int64_t out : {cudnn::kUidDQ, cudnn::kUidDK, cudnn::kUidDV, cudnn::kUidDQAccum}) {
        EXPECT_TRUE(produced.count(out)) << what << " does not write uid " << out;
      }
      for (int64_t in : {cudnn::kUidQ, cudnn::kUidK, cudnn::kUidV, cudnn::kUidO, cudnn::kUidStats, cudnn::kUidDO}) {
        EXPECT_FALSE(produced.count(in)) << what << " writes input uid " << in;
      }
      for (const auto& op : g.ops) {
        if (op.kind == cudnn::OpKind::reduction) {
          EXPECT_EQ(g.tensor(op.y).dims, v({1, 2, 100, 1})) << what;
        }
      }
      const bool current = layout == cudnn::SdpaBackwardLayout::current;
      // Ops: D (mul, reduce, ·1), S (matmul, ·scale, −Stats, exp), dV (reshape, matmul), dS (matmul,
      // −D, ⊙P, ·scale [+ ·1 before frontend 1.11]), dK (reshape, matmul), dQ (reshape, matmul,
      // identity); causal adds 2 GEN_INDEX, CMP_GE and BINARY_SELECT.
      EXPECT_EQ(g.ops.size(), 18u + (current ? 0u : 1u) + (causal ? 4u : 0u)) << what;
      EXPECT_EQ(count_ops(g, CUDNN_POINTWISE_GEN_INDEX), causal ? 2 : 0) << what;
      EXPECT_EQ(count_ops(g, CUDNN_POINTWISE_BINARY_SELECT), causal ? 1 : 0) << what;
      EXPECT_EQ(count_ops(g, CUDNN_POINTWISE_EXP), 1) << what;
      if (!causal) {
        EXPECT_THROW(g.tensor(cudnn::kUidNegInf), std::logic_error);
        continue;
      }
      // Where the mask sits: current layout after S − Stats; frontend 1.8 and legacy before it (as in
      // the forward).
      const auto& select = op_named(g, "causal_select");
      EXPECT_EQ(select.b, cudnn::kUidNegInf);
      const auto& sub = op_named(g, "sub_s_stats");
      if (!current) {
        EXPECT_EQ(select.x, op_named(g, "mul_s_attn_scale").y) << what;
        EXPECT_EQ(sub.x, select.y) << what;
        EXPECT_EQ(op_named(g, "exp_s").x, sub.y) << what;
      } else {
        EXPECT_EQ(select.x, sub.y) << what;
        EXPECT_EQ(sub.x, op_named(g, "mul_s_attn_scale").y) << what;
        EXPECT_EQ(op_named(g, "exp_s").x, select.y) << what;
      }
      EXPECT_EQ(op_named(g, "gen_row_index").axis, 2);
      EXPECT_EQ(op_named(g, "gen_col_index").axis, 3);
      EXPECT_EQ(op_named(g, "row_ge_col").pointwise, CUDNN_POINTWISE_CMP_GE);
    }
  }
}

TEST(CudnnSdpaBackwardGraph, ScratchBytesHoldTheAccumulatorAndRowDot) {
  // b=4, h=16, s=4096, d=128: fp32 dQ 128 MiB, fp32 D 1 MiB (both 256-byte aligned already).
  EXPECT_EQ(cudnn::SdpaBackward::scratch_bytes({4, 16, 4096, 128, false}), 129u << 20);
  // b=1, h=1, s=5, d=8: 160 and 20 bytes, each rounded up to 256.
  EXPECT_EQ(cudnn::SdpaBackward::scratch_bytes({1, 1, 5, 8, true}), 512u);
}

TEST(CudnnSdpaGraph, LowersToBackendDescriptorsWithoutAGpu) {
  const std::string why = cudnn::unavailable_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  // Without causal: 6 real tensors (Q, K, V, O, Stats, scale), 8 virtual ones (S, scaled S, max,
  // S - max, exp, sum, log sum, P) and 10 ops, each an operation plus its settings descriptor.
  // Causal adds the fill value, 4 virtual tensors (row, col, row >= col, masked S) and 4 ops.
  EXPECT_EQ(cudnn::build_graph_descriptors(cudnn::sdpa_forward_graph(DType::bf16, {2, 3, 5, 8, false})), 14u + 2 * 10u);
  EXPECT_EQ(cudnn::build_graph_descriptors(cudnn::sdpa_forward_graph(DType::fp16, {1, 4, 1000, 128, true})),
            19u + 2 * 14u);
  // Backward, current layout: 13 real tensors (Q, K, V, O, Stats, dO, dQ, dK, dV, scale, one,
  // dQ_accum, softmax_sum), 13 virtual ones, 15 ops with a settings descriptor and 3 reshapes
  // without. Frontend 1.8: plus dP * 1 (a tensor and an op). Legacy: that too, and D virtual
  // instead of real. Causal adds the fill value, 4 virtual tensors and 4 ops. This checks every
  // attribute cuDNN validates without a device, the reordering mode and the reshapes included.
  const auto current = cudnn::SdpaBackwardLayout::current, legacy = cudnn::SdpaBackwardLayout::legacy;
  const auto v1_8 = cudnn::SdpaBackwardLayout::frontend_1_8;
  const auto lowered = [](DType dtype, kernels::AttentionDims dims, cudnn::SdpaBackwardVariant var) {
    return cudnn::build_graph_descriptors(cudnn::sdpa_backward_graph(dtype, dims, var));
  };
  EXPECT_EQ(lowered(DType::bf16, {2, 3, 5, 8, false}, variant(current)), 26u + 2 * 15u + 3u);
  EXPECT_EQ(lowered(DType::bf16, {2, 3, 5, 8, false}, variant(v1_8)), 27u + 2 * 16u + 3u);
  EXPECT_EQ(lowered(DType::bf16, {2, 3, 5, 8, false}, variant(legacy)), 27u + 2 * 16u + 3u);
  EXPECT_EQ(lowered(DType::fp16, {1, 4, 1000, 128, true}, variant(current)), 31u + 2 * 19u + 3u);
  EXPECT_EQ(lowered(DType::bf16, {2, 16, 4096, 128, true}, variant(v1_8)), 32u + 2 * 20u + 3u);
  EXPECT_EQ(lowered(DType::bf16, {2, 16, 4096, 128, true}, variant(legacy)), 32u + 2 * 20u + 3u);
  // Every variant SdpaBackward tries lowers, with K in either type.
  for (const auto& a : cudnn::sdpa_backward_attempts()) {
    for (bool causal : {false, true}) {
      EXPECT_GT(lowered(DType::bf16, {1, 2, 128, 64, causal}, a), 0u) << cudnn::sdpa_backward_variant_name(a);
    }
  }
}

TEST(CudnnSdpa, NoGpuMeansAClearErrorFromCudnnCreate) {
  if (has_gpu()) GTEST_SKIP() << "this machine has a GPU: the handle would be created";
  const std::string why = cudnn::unavailable_reason();
  if (!why.empty()) {
    EXPECT_THROW(cudnn::SdpaForward(DType::bf16, {1, 1, 64, 64, false}), std::runtime_error);
    EXPECT_THROW(cudnn::SdpaBackward(DType::bf16, {1, 1, 64, 64, false}), std::runtime_error);
    return;
  }
  try {
    cudnn::SdpaForward sdpa(DType::bf16, {1, 1, 64, 64, false});
    FAIL() << "a cuDNN handle was created without a GPU";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cuDNN: cudnnCreate failed: CUDNN_STATUS_", 0), 0u) << e.what();
  }
  try {
    cudnn::SdpaBackward sdpa(DType::bf16, {1, 1, 64, 64, true});
    FAIL() << "a cuDNN handle was created without a GPU";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cuDNN: cudnnCreate failed: CUDNN_STATUS_", 0), 0u) << e.what();
  }
}

TEST(CudnnSdpa, RegisteredAfterFusedWithFusedAsBaseline) {
  Registry r;
  register_all_benchmarks(r);
  std::map<std::string, std::size_t> position;
  for (std::size_t i = 0; i < r.all().size(); ++i) position[r.all()[i].name] = i;
  for (const char* quick_cudnn : {"attention_fwd/cudnn/bf16/b:4/h:16/s:4096/d:128/causal:0",
                                  "attention_bwd/cudnn/bf16/b:4/h:16/s:4096/d:128/causal:0"}) {
    const BenchSpec* s = r.find(quick_cudnn);
    EXPECT_TRUE(s && s->suites.count("quick")) << quick_cudnn;
  }
  std::map<std::string, int> cudnn_benchmarks;
  for (const BenchSpec& s : r.all()) {
    if (s.impl != "cudnn") continue;
    ++cudnn_benchmarks[s.family];
    std::string fused = s.name;
    fused.replace(fused.find("/cudnn/"), 7, "/fused/");
    EXPECT_EQ(s.baseline, fused);
    ASSERT_TRUE(position.count(fused)) << fused;
    EXPECT_LT(position[fused], position[s.name]);
    const BenchSpec& f = r.all()[position[fused]];
    EXPECT_EQ(f.suites, s.suites) << s.name;
    EXPECT_EQ(f.flops, s.flops) << s.name;
    EXPECT_EQ(f.baseline.find("/unfused/") != std::string::npos, true) << "fused keeps unfused as baseline";
    // The public FLOP count is also the matmul count (cuDNN's tiling is not public).
    EXPECT_EQ(s.counters.at("matmul_flops"), s.flops) << s.name;
  }
  // Every shape, forward and backward: 2 head shapes x 6 sequences x 2 masks, + fp16 at s=4096,
  // and the model suite's 2 GPT-2 + 2 Llama configurations x 2 dtypes (bench/model_parts.hpp).
  EXPECT_EQ(cudnn_benchmarks["attention_fwd"], 2 * 6 * 2 + 2 + 4 * 2);
  EXPECT_EQ(cudnn_benchmarks["attention_bwd"], 2 * 6 * 2 + 2 + 4 * 2);
  EXPECT_EQ(cudnn_benchmarks.size(), 2u);
}

}  // namespace wflops
