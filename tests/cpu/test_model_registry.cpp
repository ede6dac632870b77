// The model_step family's registrations (bench/model_bench.cpp): names, suites, baselines and the
// FLOP and byte counters a step's result carries, against values worked out by hand; and that
// `wflops list` and `wflops run` handle the family without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "cuda/device_info.hpp"
#include "cuda/model_step.hpp"
#include "model/flops_model.hpp"
#include "model/model_phases.hpp"
#include "program_run.hpp"
#include "registered_benchmarks.hpp"

namespace wflops {

namespace {

using testing::registered_benchmarks;

const char* kReferenceEager = "model_step/eager/bf16/arch:gpt2/d:1600/L:8/h:25/s:256/b:32/V:50257";
const char* kReferenceFused = "model_step/fused/bf16/arch:gpt2/d:1600/L:8/h:25/s:256/b:32/V:50257";

std::vector<const BenchSpec*> model_steps() {
  std::vector<const BenchSpec*> out;
  for (const BenchSpec& s : registered_benchmarks().all()) {
    if (s.family == model_phases::kFamily) out.push_back(&s);
  }
  return out;
}

double counter(const BenchSpec& s, const std::string& key) {
  const auto it = s.counters.find(key);
  return it == s.counters.end() ? -1.0 : it->second;
}

}  // namespace

TEST(ModelRegistry, TwoGpt2AndTwoLlamaConfigurationsTwoDtypesTwoImplementations) {
  std::set<std::string> names;
  for (const BenchSpec* s : model_steps()) names.insert(s->name);
  const std::set<std::string> expected = {
      kReferenceEager,
      kReferenceFused,
      "model_step/eager/fp16/arch:gpt2/d:1600/L:8/h:25/s:256/b:32/V:50257",
      "model_step/fused/fp16/arch:gpt2/d:1600/L:8/h:25/s:256/b:32/V:50257",
      "model_step/eager/bf16/arch:gpt2/d:768/L:12/h:12/s:1024/b:16/V:50257",
      "model_step/fused/bf16/arch:gpt2/d:768/L:12/h:12/s:1024/b:16/V:50257",
      "model_step/eager/fp16/arch:gpt2/d:768/L:12/h:12/s:1024/b:16/V:50257",
      "model_step/fused/fp16/arch:gpt2/d:768/L:12/h:12/s:1024/b:16/V:50257",
      "model_step/eager/bf16/arch:llama/d:4096/L:2/h:32/kvh:8/ff:14336/s:4096/b:1/V:128256",
      "model_step/fused/bf16/arch:llama/d:4096/L:2/h:32/kvh:8/ff:14336/s:4096/b:1/V:128256",
      "model_step/eager/fp16/arch:llama/d:4096/L:2/h:32/kvh:8/ff:14336/s:4096/b:1/V:128256",
      "model_step/fused/fp16/arch:llama/d:4096/L:2/h:32/kvh:8/ff:14336/s:4096/b:1/V:128256",
      "model_step/eager/bf16/arch:llama/d:4096/L:2/h:32/kvh:8/ff:14336/s:4096/b:2/V:128256",
      "model_step/fused/bf16/arch:llama/d:4096/L:2/h:32/kvh:8/ff:14336/s:4096/b:2/V:128256",
      "model_step/eager/fp16/arch:llama/d:4096/L:2/h:32/kvh:8/ff:14336/s:4096/b:2/V:128256",
      "model_step/fused/fp16/arch:llama/d:4096/L:2/h:32/kvh:8/ff:14336/s:4096/b:2/V:128256",
  };
  EXPECT_EQ(names, expected);
  EXPECT_EQ(model_steps().size(), expected.size()) << "each registered once";
}

TEST(ModelRegistry, NamesParseBackAndTheWorkloadAcceptsThem) {
  for (const BenchSpec* s : model_steps()) {
    const auto shape = model_phases::parse_model_step_shape(s->name);
    ASSERT_TRUE(shape) << s->name;
    EXPECT_EQ(model_phases::model_step_name(s->impl, std::string(dtype_name(s->dtype)), *shape), s->name);
    EXPECT_TRUE(s->dtype == DType::bf16 || s->dtype == DType::fp16) << s->name;
    EXPECT_TRUE(s->impl == "eager" || s->impl == "fused") << s->name;
    EXPECT_EQ(model_step_unsupported_reason(ModelStepConfig{s->impl, s->dtype, *shape}), "") << s->name;
    EXPECT_TRUE(s->make) << s->name;
    EXPECT_FALSE(s->label.empty()) << s->name;
  }
}

TEST(ModelRegistry, LlamaRunsInTheModelAndFullSuitesOnly) {
  // Llama-3-8B's steps are large (1.5 G parameters, some 60 GB while the check runs both
  // implementations): in "model" and "full", not "quick".
  std::size_t llama = 0;
  for (const BenchSpec* s : model_steps()) {
    if (s->name.find("arch:llama") == std::string::npos) continue;
    ++llama;
    EXPECT_EQ(s->suites, std::set<std::string>{"model"}) << s->name;
    if (s->impl == "fused") {
      EXPECT_EQ(s->baseline, std::string(s->name).replace(11, 5, "eager")) << s->name;
    }
    EXPECT_NE(s->label.find("untied"), std::string::npos) << s->name;
  }
  EXPECT_EQ(llama, 8u);
  for (const BenchSpec* s : registered_benchmarks().suite("full")) {
    if (s->name.find("arch:llama") != std::string::npos) --llama;
  }
  EXPECT_EQ(llama, 0u) << "every llama step in the full suite";
}

TEST(ModelRegistry, Gpt2ReferenceCountsAreTheHandCheckedOnes) {
  const BenchSpec* s = registered_benchmarks().find(kReferenceEager);
  ASSERT_NE(s, nullptr);
  // N_w = 8 x 12 x 1600^2 + 50,257 x 1600 = 245,760,000 + 80,411,200 = 326,171,200; 6 N_w T with
  // T = 32 x 256 = 8192.
  EXPECT_DOUBLE_EQ(s->flops, 16031966822400.0);
  // Attention per layer, causal forward: 2 T s d = 2 x 8192 x 256 x 1600 = 6,710,886,400; the
  // backward 2.5 times that; 8 layers: 8 x 3.5 x 6,710,886,400 = 187,904,819,200.
  EXPECT_DOUBLE_EQ(counter(*s, model_phases::kAttnFlops), 187904819200.0);
  // Model FLOPs: 16,031,966,822,400 + 187,904,819,200.
  EXPECT_DOUBLE_EQ(counter(*s, model_phases::kModelFlops), 16219871641600.0);
  EXPECT_DOUBLE_EQ(s->bytes, 0.0);
  // The GEMM phases, forward: linear_forward 2 W T over the step, L times for a block's matrix.
  // QKV 2 x 3 x 1600^2 x 8192 x 8 = 1,006,632,960,000; output projection a third of it; each MLP
  // GEMM 2 x 1600 x 6400 x 8192 x 8 = 1,342,177,280,000; LM head 2 x 80,411,200 x 8192.
  // Backward: both gradients, twice the forward.
  const std::pair<const char*, double> forward[] = {{"qkv", 1006632960000.0},
                                                    {"out_proj", 335544320000.0},
                                                    {"mlp_up", 1342177280000.0},
                                                    {"mlp_down", 1342177280000.0},
                                                    {"lm_head", 1317457100800.0}};
  for (const auto& [component, flops] : forward) {
    EXPECT_DOUBLE_EQ(counter(*s, std::string(model_phases::kFlops) + "fwd_" + component), flops) << component;
    EXPECT_DOUBLE_EQ(counter(*s, std::string(model_phases::kFlops) + "bwd_" + component), 2 * flops) << component;
  }
  // The attention core: 8 x 6,710,886,400 forward, 2.5 times that backward.
  EXPECT_DOUBLE_EQ(counter(*s, "phase_flops_fwd_attention"), 53687091200.0);
  EXPECT_DOUBLE_EQ(counter(*s, "phase_flops_bwd_attention"), 134217728000.0);
  // Two memory phases' bytes (every phase: tests/cpu/test_model_bytes.cpp): the bf16 logits read
  // once by the loss, 8192 x 50,257 x 2, with the targets, the log-sum-exp and the mean; AdamW
  // and the cast over the 326,750,400 parameters, 34 bytes each.
  EXPECT_DOUBLE_EQ(counter(*s, "phase_bytes_fwd_loss"), 823476228.0);
  EXPECT_DOUBLE_EQ(counter(*s, "phase_bytes_optimizer"), 11109513600.0);
}

TEST(ModelRegistry, PhaseFlopsSumToFlopsAndAttentionFlops) {
  for (const BenchSpec* s : model_steps()) {
    double weight = 0, attention = 0;
    for (const model_phases::Phase& p : model_phases::phases()) {
      const double f = counter(*s, model_phases::kFlops + p.name);
      if (p.kind == model_phases::Kind::memory) {
        EXPECT_EQ(f, -1.0) << s->name << " " << p.name << ": a memory-bound phase counts no FLOPs";
        continue;
      }
      ASSERT_GT(f, 0) << s->name << " " << p.name;
      (p.kind == model_phases::Kind::gemm ? weight : attention) += f;
    }
    EXPECT_DOUBLE_EQ(weight, s->flops) << s->name;
    EXPECT_DOUBLE_EQ(attention, counter(*s, model_phases::kAttnFlops)) << s->name;
    EXPECT_DOUBLE_EQ(weight + attention, counter(*s, model_phases::kModelFlops)) << s->name;
  }
}

TEST(ModelRegistry, MemoryPhasesHaveBytesAndFusedOmitsExactlyTheFoldedOnes) {
  int fused = 0;
  for (const BenchSpec* s : model_steps()) {
    const bool is_fused = s->impl == "fused";
    fused += is_fused;
    for (const model_phases::Phase& p : model_phases::phases()) {
      const bool has_bytes = s->counters.count(model_phases::kBytes + p.name) > 0;
      const bool folded =
          is_fused && model_phases::fused_into(p.name, model_phases::parse_model_step_shape(s->name)->arch) != nullptr;
      if (p.kind != model_phases::Kind::memory) {
        EXPECT_FALSE(has_bytes) << s->name << " " << p.name << ": a GEMM or attention phase counts FLOPs";
      } else {
        EXPECT_EQ(has_bytes, !folded) << s->name << " " << p.name;
      }
    }
  }
  EXPECT_EQ(fused, 8);
}

TEST(ModelRegistry, FusedIsReadAgainstEagerAndTheFamilyRunsLast) {
  const std::vector<BenchSpec>& all = registered_benchmarks().all();
  const auto position = [&](const std::string& name) {
    return std::find_if(all.begin(), all.end(), [&](const BenchSpec& s) { return s.name == name; }) - all.begin();
  };
  std::size_t first = all.size();
  for (const BenchSpec* s : model_steps()) {
    first = std::min(first, static_cast<std::size_t>(position(s->name)));
    if (s->impl == "eager") {
      EXPECT_TRUE(s->baseline.empty()) << s->name;
      continue;
    }
    std::string eager = s->name;
    eager.replace(eager.find("/fused/"), 7, "/eager/");
    EXPECT_EQ(s->baseline, eager);
    EXPECT_LT(position(eager), position(s->name));
    const BenchSpec* base = registered_benchmarks().find(eager);
    ASSERT_NE(base, nullptr);
    EXPECT_EQ(base->suites, s->suites) << s->name;
  }
  // Every other family comes before (breakdown reads a step against their results).
  for (std::size_t i = first; i < all.size(); ++i) EXPECT_EQ(all[i].family, model_phases::kFamily) << all[i].name;
}

TEST(ModelRegistry, SuitesModelAndQuick) {
  std::set<std::string> quick;
  for (const BenchSpec* s : registered_benchmarks().suite("quick")) {
    if (s->family == model_phases::kFamily) quick.insert(s->name);
  }
  EXPECT_EQ(quick, (std::set<std::string>{kReferenceEager, kReferenceFused}));
  // The model suite holds the sixteen steps and what breakdown reads them against
  // (test_model_suite.cpp).
  int steps = 0;
  for (const BenchSpec* s : registered_benchmarks().suite("model")) steps += s->family == model_phases::kFamily;
  EXPECT_EQ(steps, 16);
}

TEST(ModelRegistry, ListShowsTheFamilyWithoutAGpu) {
  const auto r = testing::run_wflops("list --suite model");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find(kReferenceFused), std::string::npos) << r.out;
  const std::string count =
      std::to_string(registered_benchmarks().suite("model").size()) + " benchmarks in suite 'model'";
  EXPECT_NE(r.out.find(count), std::string::npos) << r.out;
}

TEST(ModelRegistry, RunWithoutAGpuRefusesInOneLine) {
  if (gpu_unavailable_reason().empty()) GTEST_SKIP() << "this machine has a GPU: run would measure, not refuse";
  const auto r = testing::run_wflops("run --suite model --benchmark_filter=model_step/fused/bf16");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("no usable GPU"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
}

}  // namespace wflops
