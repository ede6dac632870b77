// The phases of a model step (src/model/model_phases.hpp), their FLOPs (src/model/flops_model_phases.hpp), and
// `wflops breakdown` on tests/data/model_step_h100.json (written by make_model_fixture.py): shares,
// rates, gains and in-model-over-alone ratios worked out by hand from the fixture's round phase times.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "errors.hpp"
#include "model/flops_model.hpp"
#include "model/flops_model_phases.hpp"
#include "model/model_phases.hpp"
#include "program_run.hpp"
#include "results/breakdown.hpp"
#include "results/result_reader.hpp"

namespace wflops {

namespace {

const std::string kFixture = std::string(WFLOPS_SOURCE_DIR) + "/tests/data/model_step_h100.json";
const std::string kEager = "model_step/eager/bf16/arch:gpt2/d:1600/L:8/h:25/s:256/b:32/V:50257";
const std::string kFused = "model_step/fused/bf16/arch:gpt2/d:1600/L:8/h:25/s:256/b:32/V:50257";

const BreakdownRow& row(const Breakdown& b, const std::string& phase) {
  for (const BreakdownRow& r : b.rows) {
    if (r.phase == phase) return r;
  }
  throw std::runtime_error("no row " + phase);
}

const BreakdownPart& part(const Breakdown& b, const std::string& prefix) {
  for (const BreakdownPart& p : b.parts) {
    if (p.what.rfind(prefix, 0) == 0) return p;
  }
  throw std::runtime_error("no part " + prefix);
}

}  // namespace

// ---- phase names ---------------------------------------------------------------------------------

TEST(ModelPhases, ForwardThenBackwardReversedThenOptimizer) {
  const auto& all = model_phases::phases();
  ASSERT_EQ(all.size(), 23u);  // 11 components, forward and backward, and the optimizer
  EXPECT_EQ(all.front().name, "fwd_embedding");
  EXPECT_EQ(all[2].name, "fwd_qkv");
  EXPECT_EQ(all[10].name, "fwd_loss");
  EXPECT_EQ(all[11].name, "bwd_loss");  // the backward starts where the forward ended
  EXPECT_EQ(all[21].name, "bwd_embedding");
  EXPECT_EQ(all.back().name, "optimizer");
  EXPECT_EQ(model_phases::find_phase("bwd_attention")->kind, model_phases::Kind::attention);
  EXPECT_EQ(model_phases::find_phase("fwd_lm_head")->kind, model_phases::Kind::gemm);
  EXPECT_EQ(model_phases::find_phase("optimizer")->kind, model_phases::Kind::memory);
  EXPECT_EQ(model_phases::find_phase("fwd_bias"), nullptr);
}

TEST(ModelPhases, FusedKernelsFoldResidualAndActivation) {
  EXPECT_STREQ(model_phases::fused_into("fwd_residual", flops::ModelArch::gpt2), "fwd_norm");
  EXPECT_STREQ(model_phases::fused_into("bwd_residual", flops::ModelArch::gpt2), "bwd_norm");
  EXPECT_STREQ(model_phases::fused_into("fwd_activation", flops::ModelArch::gpt2), "fwd_mlp_up");
  // dGELU rides on the epilogue of the d_ff-wide input gradient, which is mlp_down's backward.
  EXPECT_STREQ(model_phases::fused_into("bwd_activation", flops::ModelArch::gpt2), "bwd_mlp_down");
  EXPECT_EQ(model_phases::fused_into("fwd_norm", flops::ModelArch::gpt2), nullptr);
  // llama: the residual adds fold into its add + RMSNorm kernels, but SwiGLU has no epilogue.
  EXPECT_STREQ(model_phases::fused_into("fwd_residual", flops::ModelArch::llama), "fwd_norm");
  EXPECT_EQ(model_phases::fused_into("fwd_activation", flops::ModelArch::llama), nullptr);
  EXPECT_EQ(model_phases::fused_into("bwd_activation", flops::ModelArch::llama), nullptr);
}

TEST(ModelPhases, NamesRoundTrip) {
  EXPECT_EQ(model_phases::model_step_name("fused", "bf16", flops::gpt2_reference_shape()), kFused);
  flops::ModelStepShape llama = flops::llama3_8b_block_shape();
  const std::string name = model_phases::model_step_name("eager", "fp16", llama);
  EXPECT_EQ(name, "model_step/eager/fp16/arch:llama/d:4096/L:2/h:32/kvh:8/ff:14336/s:4096/b:1/V:128256");
  const auto back = model_phases::parse_model_step_shape(name);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->arch, flops::ModelArch::llama);
  EXPECT_TRUE(back->untied);
  EXPECT_DOUBLE_EQ(flops::model_weights(*back), 961544192.0);
  const auto gpt2 = model_phases::parse_model_step_shape(kEager);
  ASSERT_TRUE(gpt2);
  EXPECT_DOUBLE_EQ(gpt2->ffn, 6400);  // a GPT-2 name implies d_ff = 4d and kvh = h
  EXPECT_DOUBLE_EQ(gpt2->kv_heads, 25);
  EXPECT_DOUBLE_EQ(gpt2->tokens(), 8192);
  EXPECT_FALSE(model_phases::parse_model_step_shape("model_step/eager/bf16/arch:gpt2/d:1600/L:8/h:25/s:256/b:32"));
  EXPECT_FALSE(model_phases::parse_model_step_shape("model_step/eager/bf16/arch:gpt2/d:1.5/L:8/h:25/s:256/b:32/V:9"));
  EXPECT_FALSE(model_phases::parse_model_step_shape("model_step/eager/bf16/arch:bert/d:16/L:8/h:25/s:256/b:32/V:9"));
  EXPECT_FALSE(model_phases::parse_model_step_shape("matmul/cublas/bf16/m:1/n:1/k:1"));
}

// ---- phase FLOPs -----------------------------------------------------------------------------------

TEST(ModelPhaseFlops, GemmsSumToTheModelsWeights) {
  for (const flops::ModelStepShape& m :
       {flops::gpt2_reference_shape(), flops::gpt2_small_shape(), flops::llama3_8b_block_shape()}) {
    double weights = 0, step = 0;
    for (const flops::ModelGemm& g : flops::model_gemms(m)) {
      weights += g.out * g.in * g.per_step;
      step += flops::model_phase_weight_flops(m, g.component, false) +
              flops::model_phase_weight_flops(m, g.component, true);
    }
    EXPECT_DOUBLE_EQ(weights, flops::model_weights(m));
    EXPECT_DOUBLE_EQ(step, flops::model_step_weight_flops(m));
    EXPECT_DOUBLE_EQ(flops::model_phase_attention_flops(m, false) + flops::model_phase_attention_flops(m, true),
                     flops::model_step_attention_flops(m));
  }
}

TEST(ModelPhaseFlops, HandCheckedPhases) {
  const flops::ModelStepShape m = flops::gpt2_reference_shape();
  // QKV forward: 8 layers x 2 x (4800 x 1600) x 8192 tokens.
  EXPECT_DOUBLE_EQ(flops::model_phase_weight_flops(m, "qkv", false), 1006632960000.0);
  // Its backward: the input and weight gradients, twice the forward.
  EXPECT_DOUBLE_EQ(flops::model_phase_weight_flops(m, "qkv", true), 2013265920000.0);
  // LM head forward, once: 2 x 50257 x 1600 x 8192 = 50257 x 26,214,400.
  EXPECT_DOUBLE_EQ(flops::model_phase_weight_flops(m, "lm_head", false), 1317457100800.0);
  EXPECT_DOUBLE_EQ(flops::model_phase_weight_flops(m, "norm", false), 0.0);
  // Attention forward: 8 x 4 x 32 x 25 x 256² x 64 / 2 (causal).
  EXPECT_DOUBLE_EQ(flops::model_phase_attention_flops(m, false), 53687091200.0);
  EXPECT_DOUBLE_EQ(flops::model_phase_attention_flops(m, true), 134217728000.0);  // 2.5x
  // llama: Q and O 4096 wide, K and V 8 heads of 128: the QKV matrix is 6144 x 4096; gate and up
  // are read as one 28672 x 4096 GEMM.
  const auto gemms = flops::model_gemms(flops::llama3_8b_block_shape());
  EXPECT_DOUBLE_EQ(gemms[0].out, 6144);
  EXPECT_DOUBLE_EQ(gemms[2].out, 28672);
  EXPECT_DOUBLE_EQ(gemms[4].per_step, 1);
}

// The fixture's generator restates the FLOP model in Python; it must agree with the module.
TEST(ModelPhaseFlops, FixtureAgreesWithTheModule) {
  const ResultFile file = read_result_file(kFixture);
  const flops::ModelStepShape m = flops::gpt2_reference_shape();
  for (const std::string& name : {kEager, kFused}) {
    const BenchmarkResult* b = file.find(name);
    ASSERT_TRUE(b);
    EXPECT_DOUBLE_EQ(*b->flops, flops::model_step_weight_flops(m));
    EXPECT_DOUBLE_EQ(b->counters.at("attn_flops"), flops::model_step_attention_flops(m));
    EXPECT_DOUBLE_EQ(b->counters.at("model_flops"), flops::model_step_model_flops(m));
    int checked = 0;
    for (const model_phases::Phase& p : model_phases::phases()) {
      const auto it = b->counters.find(model_phases::kFlops + p.name);
      const bool backward = p.direction == model_phases::Direction::bwd;
      if (p.kind == model_phases::Kind::gemm) {
        ASSERT_NE(it, b->counters.end()) << p.name;
        EXPECT_DOUBLE_EQ(it->second, flops::model_phase_weight_flops(m, p.component, backward)) << p.name;
        ++checked;
      } else if (p.kind == model_phases::Kind::attention) {
        ASSERT_NE(it, b->counters.end()) << p.name;
        EXPECT_DOUBLE_EQ(it->second, flops::model_phase_attention_flops(m, backward)) << p.name;
        ++checked;
      } else {
        EXPECT_EQ(it, b->counters.end()) << p.name << ": memory-bound phases state bytes, not FLOPs";
      }
    }
    EXPECT_EQ(checked, 12);
  }
}

// ---- the breakdown ---------------------------------------------------------------------------------

TEST(Breakdown, FusedStepByHand) {
  const Breakdown b = breakdown(read_result_file(kFixture), kFused);
  // The fused phases sum to 32.85 ms; the step took 32.60 ms: 16,031,966,822,400 / 32.60 ms = 491.78.
  EXPECT_NEAR(b.phases_ms, 32.85, 1e-9);
  EXPECT_NEAR(b.step_ms, 32.60, 1e-9);
  EXPECT_NEAR(b.tflops, 491.778, 1e-3);
  EXPECT_NEAR(*b.model_tflops, 497.542, 1e-3);  // + 187,904,819,200 attention FLOPs
  EXPECT_EQ(b.best_matmul, "matmul/cublaslt_auto/bf16/m:8192/n:8192/k:8192");
  EXPECT_NEAR(*b.pct_best_matmul, 63.867, 1e-3);  // 491.78 / 770
  EXPECT_EQ(b.other, kEager);
  // GEMMs 25.17 ms, attention 0.66, memory-bound 7.02 (embedding 0.27, norms 1.65, loss 1.10, AdamW 4.00).
  EXPECT_NEAR(b.gemm_share_pct, 100.0 * 25.17 / 32.85, 1e-9);
  EXPECT_NEAR(b.attention_share_pct, 100.0 * 0.66 / 32.85, 1e-9);
  EXPECT_NEAR(b.memory_share_pct, 100.0 * 7.02 / 32.85, 1e-9);

  const BreakdownRow& qkv = row(b, "fwd_qkv");
  EXPECT_NEAR(qkv.share_pct, 4.7184, 1e-4);                                // 1.55 / 32.85
  EXPECT_NEAR(*qkv.tflops, 649.441, 1e-3);                                 // 1,006,632,960,000 / 1.55 ms
  EXPECT_NEAR(*qkv.pct_of_ceiling, 84.343, 1e-3);                          // over 770
  EXPECT_EQ(qkv.alone, "matmul/cublaslt_auto/bf16/m:8192/n:4800/k:1600");  // 700, not cuBLAS's 650
  EXPECT_NEAR(*qkv.over_alone, 0.92777, 1e-5);                             // 649.44 / 700
  EXPECT_NEAR(*qkv.gain, 1.70 / 1.55, 1e-12);                              // eager 1.70 ms

  // The fused residual + norm kernel: 2 x 8 pairs of 4 passes and one lone norm of 2 over
  // 8192 x 1600 bf16, 1,730,150,400 bytes in 0.70 ms; the copy moves 3000 GB/s.
  const BreakdownRow& norm = row(b, "fwd_norm");
  EXPECT_NEAR(*norm.gbps, 2471.643, 1e-3);
  EXPECT_NEAR(*norm.pct_of_ceiling, 82.388, 1e-3);
  ASSERT_EQ(norm.holds.size(), 1u);
  EXPECT_EQ(norm.holds[0], "fwd_residual");
  EXPECT_NEAR(*norm.gain, (0.80 + 0.70) / 0.70, 1e-12);  // eager's norm and residual together
  EXPECT_EQ(norm.gain_over, "fwd_norm + fwd_residual");
  EXPECT_FALSE(row(b, "fwd_residual").ms);
  EXPECT_EQ(row(b, "fwd_residual").folded_into, "fwd_norm");
  EXPECT_NEAR(*row(b, "bwd_mlp_down").gain, (4.60 + 1.80) / 4.25, 1e-12);  // with eager's dGELU
  EXPECT_NEAR(*row(b, "optimizer").gain, 7.5 / 4.0, 1e-12);

  // cuDNN's attention, forward 0.16 ms: 53,687,091,200 / 0.16 ms = 335.54 against cuDNN alone at 380.
  const BreakdownRow& attention = row(b, "fwd_attention");
  EXPECT_EQ(attention.alone, "attention_fwd/cudnn/bf16/b:32/h:25/s:256/d:64/causal:1");
  EXPECT_NEAR(*attention.over_alone, 335.544 / 380.0, 1e-5);

  // The attention core alone: 1 + 2.5 units of FLOPs at 380 and 300 take 1/380 + 2.5/300, a rate of
  // 3.5 / (1/380 + 2.5/300) = 319.2; in the model 187,904,819,200 in 0.66 ms = 284.70.
  const BreakdownPart& core = part(b, "attention core");
  EXPECT_NEAR(*core.alone_tflops, 319.2, 1e-9);
  EXPECT_NEAR(*core.tflops, 284.704, 1e-3);
  EXPECT_NEAR(*core.over_alone, 0.89193, 1e-5);
  // The MLP: 6 x 2 x 1600 x 6400 x 8192 x 8 layers = 8,053,063,680,000 FLOPs in 2.10 + 2.00 + 4.25 +
  // 3.95 = 12.30 ms = 654.72, against the fused bias + GELU MLP step alone at 660.
  const BreakdownPart& mlp = part(b, "mlp");
  EXPECT_NEAR(mlp.ms, 12.30, 1e-9);
  EXPECT_NEAR(*mlp.tflops, 654.721, 1e-3);
  EXPECT_EQ(mlp.alone, "mlp_step/fused_gelu/bf16/d:1600/ff:6400/tok:8192");
  EXPECT_NEAR(*mlp.over_alone, 0.99200, 1e-5);
}

TEST(Breakdown, EagerStepReadsAgainstUnfusedParts) {
  const Breakdown b = breakdown(read_result_file(kFixture), kEager);
  EXPECT_NEAR(b.phases_ms, 50.80, 1e-9);
  EXPECT_NEAR(b.tflops, 16031966822400.0 / 50.40e9, 1e-9);  // 318.09
  EXPECT_EQ(b.other, kFused);
  // The eager step runs the residual apart; its gain is read on fwd_norm's row, with it.
  const BreakdownRow& residual = row(b, "fwd_residual");
  EXPECT_NEAR(*residual.ms, 0.70, 1e-12);
  EXPECT_FALSE(residual.gain);
  EXPECT_EQ(residual.compared_in, "fwd_norm");
  EXPECT_NEAR(*row(b, "fwd_norm").gain, 1.5 / 0.7, 1e-12);
  EXPECT_NEAR(*row(b, "fwd_mlp_up").gain, (2.20 + 1.20) / 2.10, 1e-12);
  EXPECT_EQ(row(b, "fwd_attention").alone, "attention_fwd/unfused/bf16/b:32/h:25/s:256/d:64/causal:1");
  EXPECT_EQ(part(b, "mlp").alone, "mlp_step/unfused_gelu/bf16/d:1600/ff:6400/tok:8192");
  // 16.6 ms of MLP, 8,053,063,680,000 FLOPs: 485.12 against 520 alone.
  EXPECT_NEAR(*part(b, "mlp").over_alone, 8053063680000.0 / 16.6e9 / 520.0, 1e-12);
}

TEST(Breakdown, FileWithoutAModelStepIsAClearError) {
  const ResultFile h100 = read_result_file(std::string(WFLOPS_SOURCE_DIR) + "/tests/data/h100.json");
  try {
    breakdowns(h100, "");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("has no model step"), std::string::npos) << e.what();
  }
  const ResultFile file = read_result_file(kFixture);
  EXPECT_EQ(model_step_names(file), (std::vector<std::string>{kEager, kFused}))  // the failed one is left out
      << "failed steps are not model steps to break down";
  std::vector<std::string> skipped;
  EXPECT_EQ(breakdowns(file, "", &skipped).size(), 2u);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].rfind("model_step/fused/bf16/arch:gpt2/d:768/L:12/h:12/s:1024/b:16/V:50257 failed: "
                             "verification failed",
                             0),
            0u)
      << skipped[0];
  EXPECT_THROW(breakdowns(file, "model_step/eager/fp16/arch:gpt2/d:1/L:1/h:1/s:1/b:1/V:1"), UserError);
  EXPECT_THROW(breakdown(file, "matmul/cublas/bf16/m:8192/n:4800/k:1600"), UserError);
}

// A peer's step is timed whole: without phases it is left out, with its reason, unless it is the only one.
TEST(Breakdown, StepsWithoutPhasesAreLeftOut) {
  const std::string peer = "model_step/hf_eager/bf16/arch:gpt2/d:1600/L:8/h:25/s:256/b:32/V:50257";
  const std::string ours = "model_step/fused/bf16/arch:gpt2/d:1600/L:8/h:25/s:256/b:32/V:50257";
  const std::string text =
      R"({"context": {"source": "wflops", "wflops_version": "0.1.0", "gpu_name": "x"}, "benchmarks": [
        {"name": ")" +
      peer + R"(", "flops": 16031966822400, "tflops": 250},
        {"name": ")" +
      ours + R"(", "flops": 16031966822400, "tflops": 500,
         "phase_ms_fwd_qkv": 1.5, "phase_flops_fwd_qkv": 1006632960000, "phase_ms_optimizer": 4.5}]})";
  const ResultFile file = parse_result_text(text, "mixed.json");
  std::vector<std::string> skipped;
  const auto all = breakdowns(file, "", &skipped);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].benchmark, ours);
  EXPECT_NEAR(row(all[0], "fwd_qkv").share_pct, 25.0, 1e-12);  // 1.5 of 6 ms
  EXPECT_NEAR(*row(all[0], "fwd_qkv").tflops, 671.088, 1e-3);  // 1,006,632,960,000 / 1.5 ms
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("has no phase_ms_<phase> counters"), std::string::npos) << skipped[0];
  EXPECT_THROW(breakdowns(file, peer), UserError);
  const ResultFile only_peer = parse_result_text(
      R"({"context": {"source": "pytorch", "gpu_name": "x"}, "benchmarks": [
        {"name": ")" +
          peer + R"(", "flops": 16031966822400, "tflops": 250}]})",
      "peer.json");
  EXPECT_THROW(breakdowns(only_peer, ""), UserError);
}

// ---- the command -----------------------------------------------------------------------------------

TEST(BreakdownCommand, TableAndJson) {
  const auto table = testing::run_wflops("breakdown " + kFixture + " --benchmark " + kFused);
  ASSERT_EQ(table.code, 0) << table.out;
  EXPECT_NE(table.out.find("649.4 TFLOP/s"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("in fwd_norm"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("\n" + kFused + "\n"), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("\n" + kEager + "\n"), std::string::npos) << "--benchmark shows that step only";
  const auto json = testing::run_wflops("breakdown " + kFixture + " --format json", false);
  ASSERT_EQ(json.code, 0) << json.out;
  const nlohmann::json j = nlohmann::json::parse(json.out);
  ASSERT_EQ(j["steps"].size(), 2u);
  EXPECT_EQ(j["steps"][1]["benchmark"], kFused);
  EXPECT_NEAR(j["steps"][1]["tflops"].get<double>(), 491.778, 1e-3);
}

TEST(BreakdownCommand, BadInputIsOneLine) {
  for (const std::string& args :
       {"breakdown " + std::string(WFLOPS_SOURCE_DIR) + "/tests/data/h100.json",
        "breakdown " + kFixture + " --benchmark nope", "breakdown " + kFixture + " --format xml",
        std::string("breakdown /nonexistent.json")}) {
    const auto r = testing::run_wflops(args);
    EXPECT_EQ(r.code, 1) << args;
    EXPECT_EQ(r.out.rfind("wflops: error: ", 0), 0u) << r.out;
    EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "one line: " << r.out;
  }
}

}  // namespace wflops
