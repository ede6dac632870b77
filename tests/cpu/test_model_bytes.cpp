// The least bytes of a model step's memory-bound phases (src/model/model_bytes.hpp), against
// values worked out by hand.
#include <gtest/gtest.h>

#include "dtype.hpp"
#include "model/flops.hpp"
#include "model/flops_model.hpp"
#include "model/model_bytes.hpp"
#include "model/model_phases.hpp"

namespace wflops::flops {

namespace {
// The gpt2 reference in bf16: T = 8192 tokens, d = 1600, so one [T, d] tensor is 13,107,200
// elements, 26,214,400 bytes; [T, d_ff] 52,428,800 elements; the logits [T, V] 411,705,344.
constexpr double kTd = 26214400.0;
}  // namespace

TEST(ModelBytes, OnePassEach) {
  // Embedding: ids 4 x 8192 = 32,768; gathered rows and the written x, 26,214,400 each; the
  // position table 256 x 1600 x 2 = 819,200.
  EXPECT_DOUBLE_EQ(embedding_forward_bytes(8192, 1600, 2, 256), 53280768.0);
  // Backward: ids, dx 26,214,400, the fp32 table rows read and written 8 x 13,107,200 =
  // 104,857,600, the fp32 position gradient 256 x 1600 x 4 = 1,638,400.
  EXPECT_DOUBLE_EQ(embedding_backward_bytes(8192, 1600, 2, 256), 132743168.0);
  EXPECT_DOUBLE_EQ(embedding_backward_bytes(8192, 1600, 2, 0), 132743168.0 - 1638400.0);
  // LayerNorm: x and y 2 x 26,214,400, gain and bias 3200 x 2, mean and 1/std 8192 x 8.
  EXPECT_DOUBLE_EQ(norm_forward_bytes(8192, 1600, 2, 3200, 2), 52500736.0);
  // Backward: dy, x, dx 3 x 26,214,400, the statistics 65,536, the parameters read in bf16 6,400
  // and their fp32 gradients written 12,800.
  EXPECT_DOUBLE_EQ(norm_backward_bytes(8192, 1600, 2, 3200, 2), 78727936.0);
  // Fused with the residual: the second addend read and the sum written; the gradient arriving
  // along the stream read.
  EXPECT_DOUBLE_EQ(add_norm_forward_bytes(8192, 1600, 2, 3200, 2), 52500736.0 + 2 * kTd);
  EXPECT_DOUBLE_EQ(add_norm_backward_bytes(8192, 1600, 2, 3200, 2), 78727936.0 + kTd);
  // Fusing saves exactly the round trip of the intermediate: one [T, d] forward, two backward.
  EXPECT_DOUBLE_EQ(norm_forward_bytes(8192, 1600, 2, 3200, 2) + residual_add_bytes(8192 * 1600, 2) -
                       add_norm_forward_bytes(8192, 1600, 2, 3200, 2),
                   kTd);
  EXPECT_DOUBLE_EQ(norm_backward_bytes(8192, 1600, 2, 3200, 2) + residual_add_bytes(8192 * 1600, 2) -
                       add_norm_backward_bytes(8192, 1600, 2, 3200, 2),
                   2 * kTd);
  // RMSNorm: the gain only and one statistic: 52,428,800 + 3,200 + 32,768.
  EXPECT_DOUBLE_EQ(norm_forward_bytes(8192, 1600, 2, 1600, 1), 52464768.0);
  // Loss: the bf16 logits once, 411,705,344 x 2 = 823,410,688; targets and log-sum-exp 32,768
  // each; the mean 4.
  EXPECT_DOUBLE_EQ(loss_forward_bytes(8192, 50257, 2), 823476228.0);
  // Backward: the logits read and dlogits written, 1,646,821,376; targets and log-sum-exp read.
  EXPECT_DOUBLE_EQ(loss_backward_bytes(8192, 50257, 2), 1646886912.0);
}

TEST(ModelBytes, Gpt2ReferenceEager) {
  const ModelStepShape m = gpt2_reference_shape();  // d 1600, L 8, d_ff 6400, V 50257, 32 x 256
  const auto b = model_phase_bytes(m, 2, false);
  EXPECT_EQ(b.size(), 11u);  // every memory phase: 5 components x fwd/bwd, and the optimizer
  EXPECT_DOUBLE_EQ(b.at("fwd_embedding"), 53280768.0);
  EXPECT_DOUBLE_EQ(b.at("bwd_embedding"), 132743168.0);
  // 2 x 8 + 1 = 17 LayerNorms.
  EXPECT_DOUBLE_EQ(b.at("fwd_norm"), 17 * 52500736.0);
  EXPECT_DOUBLE_EQ(b.at("fwd_norm"), 892512512.0);
  EXPECT_DOUBLE_EQ(b.at("bwd_norm"), 1338374912.0);  // 17 x 78,727,936
  // 16 residual adds over [T, d], 3 x 26,214,400 each, forward and backward.
  EXPECT_DOUBLE_EQ(b.at("fwd_residual"), 1258291200.0);
  EXPECT_DOUBLE_EQ(b.at("bwd_residual"), 1258291200.0);
  // GELU over [T, 6400] per layer: read and write, 2 x 52,428,800 x 2 = 209,715,200, x 8; the
  // backward also reads its input, 314,572,800 x 8.
  EXPECT_DOUBLE_EQ(b.at("fwd_activation"), 1677721600.0);
  EXPECT_DOUBLE_EQ(b.at("bwd_activation"), 2516582400.0);
  EXPECT_DOUBLE_EQ(b.at("fwd_loss"), 823476228.0);
  EXPECT_DOUBLE_EQ(b.at("bwd_loss"), 1646886912.0);
  // 326,750,400 parameters (docs/model.md): AdamW 28 bytes each, the fp32 -> bf16 cast 6.
  EXPECT_DOUBLE_EQ(model_params(m).total, 326750400.0);
  EXPECT_DOUBLE_EQ(b.at("optimizer"), 11109513600.0);
  // fp16 moves as many bytes as bf16.
  EXPECT_EQ(model_phase_bytes(m, static_cast<double>(dtype_bytes(DType::fp16)), false),
            model_phase_bytes(m, static_cast<double>(dtype_bytes(DType::bf16)), false));
}

TEST(ModelBytes, Gpt2ReferenceFusedFoldsAsModelPhasesSays) {
  const ModelStepShape m = gpt2_reference_shape();
  const auto eager = model_phase_bytes(m, 2, false);
  const auto fused = model_phase_bytes(m, 2, true);
  for (const auto& [phase, bytes] : eager) {
    // Exactly the phases model_phases::fused_into folds are absent.
    EXPECT_EQ(fused.count(phase), model_phases::fused_into(phase, ModelArch::gpt2) ? 0u : 1u) << phase;
    if (phase != "fwd_norm" && phase != "bwd_norm" && fused.count(phase)) {
      EXPECT_DOUBLE_EQ(fused.at(phase), bytes) << phase;
    }
  }
  EXPECT_EQ(fused.size(), 7u);
  // 16 fused add + LayerNorm kernels, 104,929,536 each, and the first norm alone.
  EXPECT_DOUBLE_EQ(fused.at("fwd_norm"), 16 * 104929536.0 + 52500736.0);
  EXPECT_DOUBLE_EQ(fused.at("fwd_norm"), 1731373312.0);
  // Less than eager's norms and residual adds by one [T, d] per add forward, two backward.
  EXPECT_DOUBLE_EQ(eager.at("fwd_norm") + eager.at("fwd_residual") - fused.at("fwd_norm"), 16 * kTd);
  // 16 x 104,942,336 + 78,727,936 (the final norm's backward, which no gradient add meets).
  EXPECT_DOUBLE_EQ(fused.at("bwd_norm"), 1757805312.0);
  EXPECT_DOUBLE_EQ(eager.at("bwd_norm") + eager.at("bwd_residual") - fused.at("bwd_norm"), 32 * kTd);
}

TEST(ModelBytes, EveryKeyIsAMemoryPhase) {
  for (const ModelStepShape& m : {gpt2_reference_shape(), gpt2_small_shape(), llama3_8b_block_shape()}) {
    for (bool fused : {false, true}) {
      for (const auto& [phase, bytes] : model_phase_bytes(m, 2, fused)) {
        const model_phases::Phase* p = model_phases::find_phase(phase);
        ASSERT_NE(p, nullptr) << phase;
        EXPECT_EQ(p->kind, model_phases::Kind::memory) << phase;
        EXPECT_GT(bytes, 0) << phase;
      }
    }
  }
}

TEST(ModelBytes, LlamaRmsNormSwigluNoPositionTable) {
  const ModelStepShape m = llama3_8b_block_shape();  // d 4096, L 2, d_ff 14336, V 128256, 1 x 4096
  const auto b = model_phase_bytes(m, 2, false);
  // T d = 16,777,216 elements, 33,554,432 bytes; no position table: 16,384 + 2 x 33,554,432.
  EXPECT_DOUBLE_EQ(b.at("fwd_embedding"), 67125248.0);
  // 16,384 + 33,554,432 + 8 x 16,777,216.
  EXPECT_DOUBLE_EQ(b.at("bwd_embedding"), 167788544.0);
  // 5 RMSNorms: 67,108,864 + the gain 8,192 + 1/rms 16,384 = 67,133,440 each.
  EXPECT_DOUBLE_EQ(b.at("fwd_norm"), 335667200.0);
  // SwiGLU over [T, d_ff] = 58,720,256 elements: read gate and up, write: 3 x 2 bytes, x 2 layers;
  // the backward reads da, gate and up and writes both gradients: 5 x 2 bytes.
  EXPECT_DOUBLE_EQ(b.at("fwd_activation"), 704643072.0);
  EXPECT_DOUBLE_EQ(b.at("bwd_activation"), 1174405120.0);
  // Fused, the SwiGLU kernel is its own phase (no cuBLASLt epilogue computes it) with the same least
  // bytes; only the residual adds fold into the add + RMSNorm kernels.
  const auto f = model_phase_bytes(m, 2, true);
  EXPECT_DOUBLE_EQ(f.at("fwd_activation"), 704643072.0);
  EXPECT_DOUBLE_EQ(f.at("bwd_activation"), 1174405120.0);
  EXPECT_EQ(f.count("fwd_residual"), 0u);
  EXPECT_EQ(f.count("bwd_residual"), 0u);
}

}  // namespace wflops::flops
