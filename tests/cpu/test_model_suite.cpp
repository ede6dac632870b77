// `wflops run --suite model` gives `wflops breakdown` every column (docs/model.md "On a real
// result"): for each registered model step, the suite holds every standalone benchmark that
// breakdown would read its GEMM phases, attention core and MLP against (breakdown's own
// step_alone), and the matmul and copy of its "% ceil" column, each supported by its
// implementation and registered before the steps (registration order is run order).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "cuda/attention_workload.hpp"
#include "cuda/gemm.hpp"
#include "model/flops_model.hpp"
#include "model/model_phases.hpp"
#include "model_parts.hpp"
#include "registered_benchmarks.hpp"
#include "results/breakdown.hpp"

namespace wflops {

namespace {

using testing::registered_benchmarks;

// Each benchmark of the model suite by name, with its place in the run.
std::map<std::string, std::size_t> model_suite() {
  std::map<std::string, std::size_t> out;
  const std::vector<BenchSpec>& all = registered_benchmarks().all();
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i].suites.count("model")) out[all[i].name] = i;
  }
  return out;
}

std::vector<const BenchSpec*> model_steps() {
  std::vector<const BenchSpec*> out;
  for (const BenchSpec& s : registered_benchmarks().all()) {
    if (s.family == model_phases::kFamily) out.push_back(&s);
  }
  return out;
}

}  // namespace

TEST(ModelSuite, HoldsWhatBreakdownReadsEveryStepAgainst) {
  const auto suite = model_suite();
  ASSERT_FALSE(model_steps().empty());
  for (const BenchSpec* step : model_steps()) {
    ASSERT_TRUE(suite.count(step->name)) << step->name;
    const auto shape = model_phases::parse_model_step_shape(step->name);
    ASSERT_TRUE(shape) << step->name;
    const std::string dtype(dtype_name(step->dtype));
    const std::size_t at = suite.at(step->name);
    const auto before_the_step = [&](const std::string& name) {
      const auto it = suite.find(name);
      return it != suite.end() && it->second < at;
    };
    const StepAlone alone = step_alone(step->impl, dtype, *shape);
    EXPECT_EQ(alone.gemm_shapes.size(), 5u) << step->name << ": qkv, out_proj, mlp_up, mlp_down, lm_head";
    for (const auto& [component, keys] : alone.gemm_shapes) {
      // breakdown takes the fastest matmul of the shape; the suite has the autotuned cuBLASLt one.
      EXPECT_TRUE(before_the_step(benchmark_name("matmul", "cublaslt_auto", dtype, keys)))
          << step->name << " " << component << " " << keys;
    }
    ASSERT_FALSE(alone.attention_fwd.empty()) << step->name;
    for (const auto* names : {&alone.attention_fwd, &alone.attention_bwd}) {
      for (const std::string& name : *names) EXPECT_TRUE(before_the_step(name)) << step->name << " " << name;
    }
    EXPECT_TRUE(before_the_step(alone.mlp)) << step->name << " " << alone.mlp;
    // The ceilings: the best matmul of the dtype (the 8192^3 one stands for it) and the copy.
    EXPECT_TRUE(before_the_step(benchmark_name("matmul", "cublaslt_auto", dtype, "m:8192/n:8192/k:8192")))
        << step->name;
    EXPECT_TRUE(before_the_step("cast/d2d_copy/fp32/n:268435456")) << step->name;
  }
}

TEST(ModelSuite, EveryPartIsOneItsImplementationRuns) {
  for (const BenchSpec* step : model_steps()) {
    const flops::ModelStepShape m = *model_phases::parse_model_step_shape(step->name);
    const long d = static_cast<long>(m.hidden), h = static_cast<long>(m.heads);
    if (m.arch == flops::ModelArch::gpt2) {
      EXPECT_EQ(d / h, 64) << step->name << ": the head size of both GPT-2 configurations";
    }
    // The LM head's GEMM, with the real (odd) vocabulary as n.
    EXPECT_EQ(gemm_unsupported_reason(GemmImpl::cublaslt_auto, step->dtype,
                                      {static_cast<long>(m.tokens()), static_cast<long>(m.vocab), d}),
              "")
        << step->name;
    for (AttentionImpl impl : {AttentionImpl::unfused, AttentionImpl::fused, AttentionImpl::cudnn}) {
      for (AttentionPass pass : {AttentionPass::forward, AttentionPass::backward}) {
        const AttentionCase c{
            impl, pass, step->dtype, {static_cast<long>(m.batch), h, static_cast<long>(m.seq), d / h, true}};
        EXPECT_EQ(attention_unsupported_reason(c), "") << step->name << " " << attention_impl_name(impl);
      }
    }
  }
}

TEST(ModelSuite, ALlamaStepGetsItsPartsToo) {
  // Not registered while its workload is missing; its parts are what breakdown would look for.
  const flops::ModelStepShape m = flops::llama3_8b_block_shape();
  const std::string name = model_phases::model_step_name("fused", "bf16", m);
  const std::string head = benchmark_name(model_phases::kFamily, "fused", "bf16", "");
  const BenchSpec step(model_phases::kFamily, "fused", DType::bf16, name.substr(head.size()));
  ASSERT_EQ(step.name, name);
  Registry r;
  add_model_step_parts(r, step, {"model"});
  const StepAlone alone = step_alone("fused", "bf16", m);
  for (const auto& [component, keys] : alone.gemm_shapes) {
    EXPECT_TRUE(r.find(benchmark_name("matmul", "cublaslt_auto", "bf16", keys))) << component << " " << keys;
  }
  for (const auto* names : {&alone.attention_fwd, &alone.attention_bwd}) {
    for (const std::string& n : *names) EXPECT_TRUE(r.find(n)) << n;
  }
  EXPECT_EQ(alone.mlp_word, "fused_swiglu");
  EXPECT_TRUE(r.find(alone.mlp)) << alone.mlp;
  for (const BenchSpec& s : r.all()) EXPECT_EQ(s.suites, std::set<std::string>{"model"}) << s.name;
}

TEST(ModelSuite, PartsComeBeforeTheSteps) {
  std::size_t first_step = registered_benchmarks().all().size(), last_part = 0;
  for (const auto& [name, at] : model_suite()) {
    const bool step = registered_benchmarks().all()[at].family == model_phases::kFamily;
    if (step) first_step = std::min(first_step, at);
    if (!step) last_part = std::max(last_part, at);
  }
  EXPECT_LT(last_part, first_step);
}

}  // namespace wflops
