// cuDNN's fused attention without a GPU: the loader's answer, the forward graph as data
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

#include "cuda/attention_workload.hpp"
#include "cuda/cudnn_loader.hpp"
#include "cuda/cudnn_sdpa.hpp"
#include "registry.hpp"

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

}  // namespace

TEST(CudnnLoader, LoadsVersionNineOrSaysWhyNot) {
  const std::string why = cudnn::unavailable_reason();
  if (why.empty()) {
    EXPECT_EQ(cudnn::version() / 10000, 9u);
    EXPECT_EQ(cudnn::version_string().rfind("9.", 0), 0u) << cudnn::version_string();
    // The status text carries cuDNN's own name for the status.
    EXPECT_NE(cudnn::status_text(CUDNN_STATUS_NOT_SUPPORTED).find("CUDNN_STATUS_NOT_SUPPORTED"),
              std::string::npos);
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
  EXPECT_EQ(cudnn::sdpa_forward_graph(DType::fp16, {1, 1, 64, 64, false}).tensor(cudnn::kUidO).type,
            CUDNN_DATA_HALF);
  // No mask without causal: 2 matmuls, scale, sub, exp, log, add, div, 2 reductions.
  EXPECT_EQ(g.ops.size(), 10u);
  EXPECT_THROW(g.tensor(cudnn::kUidNegInf), std::logic_error);
}

TEST(CudnnSdpaGraph, DataFlowIsWellFormed) {
  for (bool causal : {false, true}) {
    const cudnn::SdpaGraph g = cudnn::sdpa_forward_graph(DType::bf16, {1, 2, 100, 64, causal});
    std::set<int64_t> uids;
    for (const auto& t : g.tensors) EXPECT_TRUE(uids.insert(t.uid).second) << "duplicate uid " << t.uid;
    // Every operand exists and is either a real input or produced by an earlier op; every tensor is
    // produced at most once; every virtual tensor is produced and consumed.
    std::set<int64_t> produced, consumed;
    for (const auto& op : g.ops) {
      for (int64_t in : {op.x, op.b, op.t}) {
        if (!in) continue;
        const auto& t = g.tensor(in);
        EXPECT_TRUE(!t.is_virtual || produced.count(in))
            << op.name << " reads " << t.name << " before it is made";
        consumed.insert(in);
      }
      EXPECT_TRUE(produced.insert(op.y).second) << g.tensor(op.y).name << " written twice";
    }
    for (const auto& t : g.tensors) {
      if (t.is_virtual) {
        EXPECT_TRUE(produced.count(t.uid) && consumed.count(t.uid)) << t.name;
        EXPECT_GE(t.uid, cudnn::kFirstVirtualUid);
      }
    }
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
  EXPECT_NE(attention_unsupported_reason(
                {AttentionImpl::cudnn, AttentionPass::backward, DType::bf16, {1, 1, 64, 64, false}}),
            "");
}

TEST(CudnnSdpaGraph, LowersToBackendDescriptorsWithoutAGpu) {
  const std::string why = cudnn::unavailable_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  // Without causal: 6 real tensors (Q, K, V, O, Stats, scale), 8 virtual ones (S, scaled S, max,
  // S - max, exp, sum, log sum, P) and 10 ops, each an operation plus its settings descriptor.
  // Causal adds the fill value, 4 virtual tensors (row, col, row >= col, masked S) and 4 ops.
  EXPECT_EQ(cudnn::build_graph_descriptors(cudnn::sdpa_forward_graph(DType::bf16, {2, 3, 5, 8, false})),
            14u + 2 * 10u);
  EXPECT_EQ(cudnn::build_graph_descriptors(cudnn::sdpa_forward_graph(DType::fp16, {1, 4, 1000, 128, true})),
            19u + 2 * 14u);
}

TEST(CudnnSdpa, NoGpuMeansAClearErrorFromCudnnCreate) {
  if (has_gpu()) GTEST_SKIP() << "this machine has a GPU: the handle would be created";
  const std::string why = cudnn::unavailable_reason();
  if (!why.empty()) {
    EXPECT_THROW(cudnn::SdpaForward(DType::bf16, {1, 1, 64, 64, false}), std::runtime_error);
    return;
  }
  try {
    cudnn::SdpaForward sdpa(DType::bf16, {1, 1, 64, 64, false});
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
  const std::string quick_cudnn = "attention_fwd/cudnn/bf16/b:4/h:16/s:4096/d:128/causal:0";
  const auto quick = r.suite("quick");
  EXPECT_TRUE(
      std::any_of(quick.begin(), quick.end(), [&](const BenchSpec* s) { return s->name == quick_cudnn; }));
  int cudnn_benchmarks = 0;
  for (const BenchSpec& s : r.all()) {
    if (s.impl != "cudnn") continue;
    ++cudnn_benchmarks;
    EXPECT_EQ(s.family, "attention_fwd") << s.name;  // forward only
    std::string fused = s.name;
    fused.replace(fused.find("/cudnn/"), 7, "/fused/");
    EXPECT_EQ(s.baseline, fused);
    ASSERT_TRUE(position.count(fused)) << fused;
    EXPECT_LT(position[fused], position[s.name]);
    const BenchSpec& f = r.all()[position[fused]];
    EXPECT_EQ(f.suites, s.suites) << s.name;
    EXPECT_EQ(f.flops, s.flops) << s.name;
    EXPECT_EQ(f.baseline.find("/unfused/") != std::string::npos, true) << "fused keeps unfused as baseline";
  }
  // Every forward shape: 2 head shapes x 6 sequences x 2 masks, + fp16 at s=4096 (2 masks).
  EXPECT_EQ(cudnn_benchmarks, 2 * 6 * 2 + 2);
}

}  // namespace wflops
