// The GPT-2 model step (src/cuda/model_step.hpp), eager and fused, bf16 and fp16, against the fp64
// reference (src/reference/model_reference.hpp) at a small shape: the loss and every parameter's
// gradient, on the compute-dtype weights the GPU multiplies. Also a whole step with AdamW, the
// workload's own verification, the head-layout kernel and the unsupported reasons. Skipped
// without a GPU (except the reasons, which need none).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/model_step.hpp"
#include "gpu_test_util.hpp"
#include "model/head_layout.cuh"
#include "numeric_formats.hpp"
#include "reference/model_reference.hpp"
#include "reference/verify_error.hpp"

namespace wflops {

namespace {

using Stream = ::wflops::testing::TestStream;

// d 256, 2 layers, 4 heads, 2 x 64 tokens, V 512. The head size is 64 (not the 32 of d = 128 at
// 4 heads) so that the fused step runs on our FlashAttention-2 where cuDNN is absent (it takes head
// sizes 64 and 128). V = 512 is a multiple of 64, so the fused step's padded vocabulary is V itself
// and the eager one multiplies the same matrix.
flops::ModelStepShape small_shape() {
  // arch, d, L, h, kvh, d_ff, V, s, b, untied
  return {flops::ModelArch::gpt2, 256, 2, 4, 4, 1024, 512, 64, 2, false};
}

struct Case {
  std::string impl;
  DType dtype;
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const char* impl : {"eager", "fused"}) {
    for (DType t : {DType::bf16, DType::fp16}) cases.push_back({impl, t});
  }
  return cases;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.impl + "_" + std::string(dtype_name(info.param.dtype));
}

// Relative L2 error of each gradient tensor against the fp64 reference. Where it comes from: every
// activation the step stores is rounded to the compute dtype (unit roundoff 2^-8 = 3.9e-3 for
// bf16, 2^-11 = 4.9e-4 for fp16), and a gradient at the bottom of this 2-layer model has passed
// through some 40 stored tensors forward and backward. Independent roundings add as a random walk
// (√40 x u/√3 = 1.4e-2 for bf16, 1.8e-3 for fp16), and the LayerNorm backward's subtractions
// amplify them somewhat. The bounds leave about 3x (bf16) and 5x (fp16) above that; a wrong
// transpose, a missing term or a wrong scale errs by O(1).
double gradient_tolerance(DType t) { return t == DType::bf16 ? 5e-2 : 1e-2; }
// The loss is one log-sum-exp over fp32 reductions of 16-bit logits: much closer than the
// gradients; the dtype's tolerance (conventions.md) applies.
double loss_tolerance(DType t) { return dtype_tolerance(t); }

void random_batch(const model_ref::Gpt2Config& c, unsigned seed, std::vector<long>& tokens,
                  std::vector<long>& targets) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<long> pick(0, c.vocab - 1);
  tokens.resize(static_cast<std::size_t>(c.tokens()));
  targets.resize(tokens.size());
  for (long& t : tokens) t = pick(rng);
  for (long& t : targets) t = pick(rng);
}

class ModelStepTest : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST_P(ModelStepTest, LossAndEveryGradientMatchFp64Reference) {
  WFLOPS_REQUIRE_GPU();
  const Case p = GetParam();
  Stream stream;
  ModelStepRunner step({p.impl, p.dtype, small_shape()}, stream.get());
  SCOPED_TRACE(step.describe());
  const model_ref::Gpt2Config rc = step.reference_config();
  // Biases and gains away from 0 and 1 (bias_std 0.02), so that their gradients and their part in
  // the forward are both exercised.
  step.set_parameters(model_ref::gpt2_random_params(rc, 7, 0.02, 0.02));
  const model_ref::Gpt2Params weights = step.compute_parameters();  // as the GPU multiplies them
  std::vector<long> tokens, targets;
  random_batch(rc, 11, tokens, targets);

  const double loss = step.run_forward_backward(tokens, targets);
  const model_ref::Gpt2Params grads = step.gradients();
  model_ref::Gpt2Params ref_grads;
  const double ref_loss = model_ref::gpt2_loss_and_gradients(rc, weights, tokens, targets, ref_grads);

  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_LT(std::fabs(loss - ref_loss) / ref_loss, loss_tolerance(p.dtype)) << loss << " vs " << ref_loss;
  const auto got = model_ref::named_tensors(grads);
  const auto ref = model_ref::named_tensors(ref_grads);
  ASSERT_EQ(got.size(), ref.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].first, ref[i].first);
    const ErrorSum e(*got[i].second, *ref[i].second);
    EXPECT_TRUE(e.within(gradient_tolerance(p.dtype)))
        << got[i].first << ": relative error " << e.relative() << " (" << e.nonfinite() << " not finite)";
  }
}

TEST_P(ModelStepTest, AFullStepChangesTheWeightsAndKeepsThemFinite) {
  WFLOPS_REQUIRE_GPU();
  const Case p = GetParam();
  Stream stream;
  ModelStepRunner step({p.impl, p.dtype, small_shape()}, stream.get());
  const model_ref::Gpt2Config rc = step.reference_config();
  step.set_parameters(model_ref::gpt2_random_params(rc, 3, 0.02, 0.0));
  const model_ref::Gpt2Params before = step.master_parameters();
  std::vector<long> tokens, targets;
  random_batch(rc, 5, tokens, targets);
  const double first = step.run_step(tokens, targets);
  const double second = step.run_step(tokens, targets);
  EXPECT_TRUE(std::isfinite(first));
  EXPECT_TRUE(std::isfinite(second));
  const model_ref::Gpt2Params after = step.master_parameters();
  const auto b = model_ref::named_tensors(before);
  const auto a = model_ref::named_tensors(after);
  for (std::size_t i = 0; i < a.size(); ++i) {
    std::size_t changed = 0, nonfinite = 0;
    for (std::size_t j = 0; j < a[i].second->size(); ++j) {
      const double x = (*a[i].second)[j];
      if (!std::isfinite(x)) ++nonfinite;
      if (x != (*b[i].second)[j]) ++changed;
    }
    EXPECT_EQ(nonfinite, 0u) << a[i].first;
    // AdamW moves every parameter with a nonzero gradient by about lr per step; only the K part of
    // b_qkv has an exactly zero gradient (softmax ignores a score shift shared by a query's keys),
    // and weight decay does not apply to biases, so b_qkv changes in two thirds of its entries.
    EXPECT_GT(changed, a[i].second->size() / 2) << a[i].first << " barely changed";
  }
}

TEST_P(ModelStepTest, WorkloadVerifiesAndLaunches) {
  WFLOPS_REQUIRE_GPU();
  const Case p = GetParam();
  Stream stream;
  auto w = make_model_step_workload({p.impl, p.dtype, small_shape()});
  EXPECT_TRUE(w->has_phases());
  const Verification r = ::wflops::testing::verify_then_launch(*w, stream.get());
  EXPECT_TRUE(r.ok) << r.detail;
  EXPECT_FALSE(w->describe().empty());
}

INSTANTIATE_TEST_SUITE_P(BothImplementations, ModelStepTest, ::testing::ValuesIn(all_cases()), case_name);

TEST(HeadLayout, SplitAndMergeMatchTheHostReference) {
  WFLOPS_REQUIRE_GPU();
  Stream stream;
  for (std::size_t hd : {64u, 12u}) {  // 16-byte vectors, and single elements
    const kernels::HeadLayout l{2, 5, 3, hd, 3};
    const std::size_t n = l.elements();
    std::vector<double> token_major(n), head_major(n);
    std::vector<float> host(n);
    for (std::size_t i = 0; i < n; ++i) host[i] = static_cast<float>(i);  // exact in fp32
    for (std::size_t i = 0; i < n; ++i) token_major[i] = host[i];
    kernels::split_heads_host(token_major.data(), head_major.data(), l);
    DeviceBuffer src(n * sizeof(float)), dst(n * sizeof(float)), back(n * sizeof(float));
    CUDA_CHECK(cudaMemcpy(src.get(), host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(kernels::split_heads(DType::fp32, src.get(), dst.get(), l, stream.get()));
    CUDA_CHECK(kernels::merge_heads(DType::fp32, dst.get(), back.get(), l, stream.get()));
    CUDA_CHECK(cudaStreamSynchronize(stream.get()));
    std::vector<float> split(n), merged(n);
    CUDA_CHECK(cudaMemcpy(split.data(), dst.get(), n * sizeof(float), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(merged.data(), back.get(), n * sizeof(float), cudaMemcpyDeviceToHost));
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(split[i], head_major[i]) << "hd " << hd << " element " << i;
      ASSERT_EQ(merged[i], host[i]) << "hd " << hd << " element " << i;
    }
  }
}

// Host-only: runs without a GPU.
TEST(ModelStepReasons, RefusesWhatItCannotRun) {
  const flops::ModelStepShape m = small_shape();
  EXPECT_EQ(model_step_unsupported_reason({"eager", DType::bf16, m}), "");
  EXPECT_EQ(model_step_unsupported_reason({"fused", DType::fp16, m}), "");
  EXPECT_NE(model_step_unsupported_reason({"compiled", DType::bf16, m}), "");
  EXPECT_NE(model_step_unsupported_reason({"eager", DType::fp32, m}), "");
  flops::ModelStepShape llama = flops::llama3_8b_block_shape();
  EXPECT_EQ(model_step_unsupported_reason({"fused", DType::bf16, llama}), "llama is not implemented yet");
  flops::ModelStepShape odd = m;
  odd.heads = 3;
  EXPECT_NE(model_step_unsupported_reason({"eager", DType::bf16, odd}), "");
  for (const flops::ModelStepShape& s : {flops::gpt2_reference_shape(), flops::gpt2_small_shape()}) {
    for (const char* impl : {"eager", "fused"}) {
      EXPECT_EQ(model_step_unsupported_reason({impl, DType::bf16, s}), "") << impl;
      EXPECT_EQ(model_step_unsupported_reason({impl, DType::fp16, s}), "") << impl;
    }
  }
}

// Host-only: the memory the harness checks before allocating, with and without a GPU. Both
// configurations of docs/model.md must fit an 80 GB GPU, the step and (while it verifies) the
// other implementation's step beside it: about 24 GB at the reference shape, 28 GB for GPT-2 small.
TEST(ModelStepMemory, TheConfigurationsFitAn80GBGpu) {
  for (const flops::ModelStepShape& s : {flops::gpt2_reference_shape(), flops::gpt2_small_shape()}) {
    for (const char* impl : {"eager", "fused"}) {
      for (DType t : {DType::bf16, DType::fp16}) {
        const double bytes = model_step_memory_bytes({impl, t, s});
        EXPECT_GT(bytes, 5e9) << impl;  // 2 x 18 bytes per parameter of 124M or more, and activations
        EXPECT_LT(bytes, 80e9) << impl;
      }
    }
  }
  EXPECT_EQ(model_step_memory_bytes({"fused", DType::bf16, flops::llama3_8b_block_shape()}), 0);
}

}  // namespace wflops
