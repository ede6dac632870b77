// Attention cases without a GPU: what each implementation refuses (with a reason), the matmul
// FLOPs and device memory it reports, and the registered benchmark names.
#include <gtest/gtest.h>

#include <algorithm>

#include "all_benchmarks.hpp"
#include "cuda/attention_workload.hpp"
#include "model/flops.hpp"

namespace wflops {

namespace {
AttentionCase make(AttentionImpl impl, AttentionPass pass, long b, long h, long s, long d, bool causal,
                   DType t = DType::bf16) {
  return {impl, pass, t, {b, h, s, d, causal}};
}
}  // namespace

TEST(AttentionCases, UnsupportedShapesGiveReasons) {
  EXPECT_EQ(attention_unsupported_reason(make(AttentionImpl::fused, AttentionPass::forward, 4, 16, 4096, 128, false)),
            "");
  EXPECT_NE(attention_unsupported_reason(make(AttentionImpl::fused, AttentionPass::forward, 1, 1, 64, 96, false))
                .find("head dims 64 and 128"),
            std::string::npos);
  EXPECT_NE(attention_unsupported_reason(
                make(AttentionImpl::unfused, AttentionPass::forward, 1, 1, 64, 64, false, DType::fp32)),
            "");
  EXPECT_NE(attention_unsupported_reason(make(AttentionImpl::unfused, AttentionPass::backward, 1, 1, 0, 64, false)),
            "");
  EXPECT_EQ(attention_unsupported_reason(make(AttentionImpl::unfused, AttentionPass::backward, 1, 1, 1000, 96, true)),
            "");
}

TEST(AttentionCases, MatmulFlopsPerImplementation) {
  // Unfused: the full square even when causal; b=4, h=16, s=4096, d=128 forward = 549,755,813,888.
  EXPECT_DOUBLE_EQ(attention_matmul_flops(make(AttentionImpl::unfused, AttentionPass::forward, 4, 16, 4096, 128, true)),
                   549755813888.0);
  EXPECT_DOUBLE_EQ(
      attention_matmul_flops(make(AttentionImpl::unfused, AttentionPass::backward, 4, 16, 4096, 128, false)),
      2.0 * 549755813888.0);
  // Fused causal forward in 64x64 tiles: 65/128 of the full square (see test_flops_attention).
  EXPECT_DOUBLE_EQ(attention_matmul_flops(make(AttentionImpl::fused, AttentionPass::forward, 4, 16, 4096, 128, true)),
                   549755813888.0 * 65.0 / 128.0);
  EXPECT_DOUBLE_EQ(attention_matmul_flops(make(AttentionImpl::fused, AttentionPass::backward, 4, 16, 4096, 128, false)),
                   2.5 * 549755813888.0);
}

TEST(AttentionCases, MemoryCountsTheScoreMatrices) {
  // Unfused forward at b=4, h=16, s=4096, d=128 bf16: S and P are 2 GiB each, Q, K, V, O 64 MiB
  // each, L 1 MiB, row dots 1 MiB.
  const double mib = 1024.0 * 1024.0;
  EXPECT_DOUBLE_EQ(
      attention_memory_bytes(make(AttentionImpl::unfused, AttentionPass::forward, 4, 16, 4096, 128, false)),
      2 * 2048 * mib + 4 * 64 * mib + 2 * mib);
  // Fused forward: no score matrix.
  EXPECT_DOUBLE_EQ(attention_memory_bytes(make(AttentionImpl::fused, AttentionPass::forward, 4, 16, 4096, 128, false)),
                   4 * 64 * mib + 1 * mib);
  // Fused backward: Q, K, V, dO, O, L in, dQ, dK, dV out, fp32 dQ accumulators (128 MiB) and D.
  EXPECT_DOUBLE_EQ(attention_memory_bytes(make(AttentionImpl::fused, AttentionPass::backward, 4, 16, 4096, 128, false)),
                   8 * 64 * mib + mib + 128 * mib + mib);
  // cuDNN backward: the same tensors, plus the fp32 dQ accumulator (128 MiB) and row dot D (1 MiB)
  // wflops places in cuDNN's workspace (the engine's own part is known only on the GPU).
  EXPECT_DOUBLE_EQ(attention_memory_bytes(make(AttentionImpl::cudnn, AttentionPass::backward, 4, 16, 4096, 128, false)),
                   8 * 64 * mib + mib + 128 * mib + mib);
}

TEST(AttentionCases, RegisteredNamesAndSuites) {
  Registry r;
  register_all_benchmarks(r);
  for (const char* name : {"attention_fwd/fused/bf16/b:4/h:16/s:4096/d:128/causal:0",
                           "attention_bwd/fused/bf16/b:4/h:16/s:4096/d:128/causal:0",
                           "attention_fwd/unfused/bf16/b:4/h:16/s:4096/d:128/causal:0",
                           "attention_bwd/unfused/bf16/b:4/h:16/s:4096/d:128/causal:0",
                           "attention_fwd/cudnn/bf16/b:4/h:16/s:4096/d:128/causal:0",
                           "attention_bwd/cudnn/bf16/b:4/h:16/s:4096/d:128/causal:0"}) {
    const BenchSpec* s = r.find(name);
    EXPECT_TRUE(s && s->suites.count("quick")) << name;
  }
  int attention = 0, model = 0;
  for (const BenchSpec& s : r.all()) {
    if (s.family != "attention_fwd" && s.family != "attention_bwd") continue;
    EXPECT_EQ(s.counters.at("attn_flops"), s.flops) << s.name;
    EXPECT_GT(s.counters.at("mem_bytes"), 0.0) << s.name;
    if (s.suites.count("attention")) {
      ++attention;
      EXPECT_TRUE(s.suites.count("full")) << s.name;
    } else {
      // The model suite's rows: the attention of its steps (bench/model_parts.hpp).
      ++model;
      EXPECT_TRUE(s.suites.count("model")) << s.name;
    }
  }
  // 2 head shapes x 6 sequences x 2 masks x (bf16, + fp16 at s=4096) x 3 impls x 2 passes.
  EXPECT_EQ(attention, (2 * 6 * 2 + 2) * (3 * 2));
  // (2 GPT-2 + 2 Llama configurations) x 2 dtypes x 3 impls x 2 passes, causal.
  EXPECT_EQ(model, 4 * 2 * 3 * 2);
}

}  // namespace wflops
