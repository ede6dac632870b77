// The model step (src/cuda/model_step.hpp), GPT-2 and Llama, eager and fused, bf16 and fp16,
// against the fp64 reference (src/reference/model_reference.hpp) at a small shape: the loss and
// every parameter's gradient, on the compute-dtype weights the GPU multiplies. Also a whole step
// with AdamW, the workload's own verification, the fused step forced onto our FlashAttention-2
// (the fallback where cuDNN is present), the head-layout, RoPE and repeat_kv kernels and the
// unsupported reasons. Skipped without a GPU (except the reasons and memory, which need none).
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
#include "model/repeat_kv.cuh"
#include "model/rope.cuh"
#include "numeric_formats.hpp"
#include "reference/model_reference.hpp"
#include "reference/verify_error.hpp"

namespace wflops {

namespace {

using Stream = ::wflops::testing::TestStream;

// d 256, 2 layers, 4 heads, 2 x 64 tokens, V 509. The head size is 64 (not the 32 of d = 128 at
// 4 heads) so that the fused step runs on our FlashAttention-2 where cuDNN is absent (it takes head
// sizes 64 and 128). V = 509 is odd, as GPT-2's 50257 is, so the paths the benchmark runs are the
// ones checked against the reference: the fused step's head padded to Vp = 512 rows (zero) with
// logits of row length Vp, and the eager step's logits of row length V (no 16-byte vectors).
flops::ModelStepShape small_shape() {
  // arch, d, L, h, kvh, d_ff, V, s, b, untied
  return {flops::ModelArch::gpt2, 256, 2, 4, 4, 1024, 509, 64, 2, false};
}

// Llama at the same size: 4 query heads of 64 over 2 K/V heads (groups of 2), d_ff 512.
flops::ModelStepShape small_llama_shape() { return {flops::ModelArch::llama, 256, 2, 4, 2, 512, 512, 64, 2, true}; }

// What the tests need of an architecture: the reference's parameters, their configuration as
// the runner gives it, their random initialisation (weights and gains / biases) and the fp64 loss
// with every gradient.
template <class P, class C, C (ModelStepRunner::*Config)() const, P (*Random)(const C&, unsigned long, double, double),
          double (*Reference)(const C&, const P&, const std::vector<long>&, const std::vector<long>&, P&)>
struct Arch {
  using Params = P;
  // Matrices N(0, 0.02²); biases and gains off 0 and 1 by N(0, small_std²).
  static Params random(const ModelStepRunner& r, unsigned seed, double small_std) {
    return Random((r.*Config)(), seed, 0.02, small_std);
  }
  static double reference(const ModelStepRunner& r, const Params& p, const std::vector<long>& tokens,
                          const std::vector<long>& targets, Params& grads) {
    return Reference((r.*Config)(), p, tokens, targets, grads);
  }
};
using Gpt2 = Arch<model_ref::Gpt2Params, model_ref::Gpt2Config, &ModelStepRunner::reference_config,
                  model_ref::gpt2_random_params, model_ref::gpt2_loss_and_gradients>;
using Llama = Arch<model_ref::LlamaParams, model_ref::LlamaConfig, &ModelStepRunner::llama_reference_config,
                   model_ref::llama_random_params, model_ref::llama_loss_and_gradients>;
using Tensors = ModelStepRunner::Tensors;

struct Case {
  std::string arch;  // "gpt2" or "llama"
  std::string impl;
  DType dtype;
  bool force_flash = false;  // the fused step on our FlashAttention-2 even where cuDNN builds
  ModelStepConfig config() const {
    return {impl, dtype, arch == "llama" ? small_llama_shape() : small_shape(), force_flash};
  }
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const char* arch : {"gpt2", "llama"}) {
    for (const char* impl : {"eager", "fused"}) {
      for (DType t : {DType::bf16, DType::fp16}) cases.push_back({arch, impl, t});
    }
    for (DType t : {DType::bf16, DType::fp16}) cases.push_back({arch, "fused", t, true});
  }
  return cases;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.arch + "_" + info.param.impl + (info.param.force_flash ? "_flash_" : "_") +
         std::string(dtype_name(info.param.dtype));
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

void random_batch(const flops::ModelStepShape& m, unsigned seed, std::vector<long>& tokens,
                  std::vector<long>& targets) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<long> pick(0, static_cast<long>(m.vocab) - 1);
  tokens.resize(static_cast<std::size_t>(m.tokens()));
  targets.resize(tokens.size());
  for (long& t : tokens) t = pick(rng);
  for (long& t : targets) t = pick(rng);
}

// The loss and every gradient of one forward and backward against the fp64 reference, on the
// compute-dtype weights the GPU multiplies.
template <class A>
void check_against_reference(const Case& p) {
  Stream stream;
  ModelStepRunner step(p.config(), stream.get());
  SCOPED_TRACE(step.describe());
  if (p.force_flash) {
    EXPECT_NE(step.describe().find("our FlashAttention-2"), std::string::npos);
  }
  // Biases and gains away from 0 and 1 (small_std 0.02), so that their gradients and their part in
  // the forward are both exercised.
  step.set_parameters(A::random(step, 7, 0.02));
  using Params = typename A::Params;
  const Params weights = step.tensors<Params>(Tensors::compute_copies);  // as the GPU multiplies them
  std::vector<long> tokens, targets;
  random_batch(p.config().shape, 11, tokens, targets);

  const double loss = step.run_forward_backward(tokens, targets);
  const Params grads = step.tensors<Params>(Tensors::gradients);
  Params ref_grads;
  const double ref_loss = A::reference(step, weights, tokens, targets, ref_grads);

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

// Two whole steps with AdamW: the weights move and stay finite.
template <class A>
void check_full_step(const Case& p) {
  Stream stream;
  ModelStepRunner step(p.config(), stream.get());
  using Params = typename A::Params;
  step.set_parameters(A::random(step, 3, 0.0));
  const Params before = step.tensors<Params>(Tensors::masters);
  std::vector<long> tokens, targets;
  random_batch(p.config().shape, 5, tokens, targets);
  const double first = step.run_step(tokens, targets);
  const double second = step.run_step(tokens, targets);
  EXPECT_TRUE(std::isfinite(first));
  EXPECT_TRUE(std::isfinite(second));
  const Params after = step.tensors<Params>(Tensors::masters);
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
    // AdamW moves every parameter with a nonzero gradient by about lr per step, and weight decay
    // every matrix (Llama's token embedding rows that no token looks up included); only the K part
    // of GPT-2's b_qkv has an exactly zero gradient (softmax ignores a score shift shared by a
    // query's keys), and weight decay does not apply to biases, so b_qkv changes in two thirds of
    // its entries.
    EXPECT_GT(changed, a[i].second->size() / 2) << a[i].first << " barely changed";
  }
}

class ModelStepTest : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST_P(ModelStepTest, LossAndEveryGradientMatchFp64Reference) {
  WFLOPS_REQUIRE_GPU();
  GetParam().arch == "llama" ? check_against_reference<Llama>(GetParam()) : check_against_reference<Gpt2>(GetParam());
}

TEST_P(ModelStepTest, AFullStepChangesTheWeightsAndKeepsThemFinite) {
  WFLOPS_REQUIRE_GPU();
  GetParam().arch == "llama" ? check_full_step<Llama>(GetParam()) : check_full_step<Gpt2>(GetParam());
}

TEST_P(ModelStepTest, WorkloadVerifiesAndLaunches) {
  WFLOPS_REQUIRE_GPU();
  const Case p = GetParam();
  Stream stream;
  auto w = make_model_step_workload(p.config());
  EXPECT_TRUE(w->has_phases());
  const Verification r = ::wflops::testing::verify_then_launch(*w, stream.get());
  EXPECT_TRUE(r.ok) << r.detail;
  EXPECT_FALSE(w->describe().empty());
}

INSTANTIATE_TEST_SUITE_P(BothArchitecturesAndImplementations, ModelStepTest, ::testing::ValuesIn(all_cases()),
                         case_name);

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

namespace {

// n fp32 values copied to the device and back after `run` (device in, device out).
template <class Run>
std::vector<float> on_device(const std::vector<float>& in, std::size_t out_n, Run run) {
  DeviceBuffer src(in.size() * sizeof(float)), dst(out_n * sizeof(float));
  CUDA_CHECK(cudaMemcpy(src.get(), in.data(), in.size() * sizeof(float), cudaMemcpyHostToDevice));
  run(src.get(), dst.get());
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> out(out_n);
  CUDA_CHECK(cudaMemcpy(out.data(), dst.get(), out_n * sizeof(float), cudaMemcpyDeviceToHost));
  return out;
}

std::vector<float> ramp(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(static_cast<double>(i % 97) / 97.0 - 0.5);
  return v;
}

}  // namespace

TEST(Rope, ForwardAndBackwardMatchTheHostReference) {
  WFLOPS_REQUIRE_GPU();
  Stream stream;
  // Out of place at positions up to 99, whose fp32 angles p · theta^(-2i/hd) carry about 1e-5 rad
  // of rounding; and in place, as the step runs it, at the Llama benchmarks' positions up to 4095,
  // where the verification cannot see a wrong angle (eager and fused run this same kernel) and the
  // angles carry up to about 1e-3 rad (exp2f's 2 ulp times p; about 1.2e-4 relative over the rows).
  // A wrong pairing, position or frequency errs by O(1).
  struct RopeCase {
    kernels::RopeDims dims;
    bool in_place;
    double tolerance;
  };
  for (const RopeCase& c : {RopeCase{{2, 3, 100, 64}, false, 1e-4}, RopeCase{{1, 2, 4096, 128}, true, 1e-3}}) {
    const std::vector<float> x = ramp(c.dims.rows() * c.dims.head_dim);
    const std::vector<double> xd(x.begin(), x.end());
    for (bool inverse : {false, true}) {
      std::vector<double> ref(xd.size());
      kernels::rope_host(xd.data(), ref.data(), c.dims, 500000, inverse);
      const std::vector<float> got = on_device(x, x.size(), [&](void* in, void* out) {
        CUDA_CHECK(kernels::rope(DType::fp32, in, c.in_place ? in : out, c.dims, 500000, inverse, stream.get()));
        if (c.in_place) {
          CUDA_CHECK(cudaMemcpyAsync(out, in, x.size() * sizeof(float), cudaMemcpyDeviceToDevice, stream.get()));
        }
      });
      const ErrorSum e(std::vector<double>(got.begin(), got.end()), ref);
      EXPECT_TRUE(e.within(c.tolerance)) << "s " << c.dims.seq << " inverse " << inverse << ": " << e.relative();
    }
  }
}

TEST(RepeatKv, ExpandAndReduceMatchTheHostReference) {
  WFLOPS_REQUIRE_GPU();
  Stream stream;
  const kernels::RepeatKvDims dims{2, 8, 2, 5, 16};
  const std::size_t head = dims.seq * dims.head_dim, kv_n = dims.batch * dims.kv_heads * head;
  const std::size_t n = dims.batch * dims.heads * head;
  const std::vector<float> kv = ramp(kv_n), g = ramp(n);
  std::vector<double> expanded(n), reduced(kv_n);
  const std::vector<double> kvd(kv.begin(), kv.end()), gd(g.begin(), g.end());
  kernels::repeat_kv_forward_host(kvd.data(), expanded.data(), dims);
  kernels::repeat_kv_backward_host(gd.data(), reduced.data(), dims);
  const std::vector<float> got_expanded = on_device(kv, n, [&](void* in, void* out) {
    CUDA_CHECK(kernels::repeat_kv_forward(DType::fp32, in, out, dims, stream.get()));
  });
  const std::vector<float> got_reduced = on_device(g, kv_n, [&](void* in, void* out) {
    CUDA_CHECK(kernels::repeat_kv_backward(DType::fp32, in, out, dims, stream.get()));
  });
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(got_expanded[i], expanded[i]) << i;  // a copy: exact
  const ErrorSum e(std::vector<double>(got_reduced.begin(), got_reduced.end()), reduced);
  EXPECT_TRUE(e.within(1e-6)) << e.relative();
}

// Host-only: runs without a GPU.
TEST(ModelStepReasons, RefusesWhatItCannotRun) {
  const flops::ModelStepShape m = small_shape();
  EXPECT_EQ(model_step_unsupported_reason({"eager", DType::bf16, m}), "");
  EXPECT_EQ(model_step_unsupported_reason({"fused", DType::fp16, m}), "");
  EXPECT_NE(model_step_unsupported_reason({"compiled", DType::bf16, m}), "");
  EXPECT_NE(model_step_unsupported_reason({"eager", DType::fp32, m}), "");
  flops::ModelStepShape llama = flops::llama3_8b_block_shape();
  for (double batch : {1.0, 2.0}) {
    llama.batch = batch;
    for (const char* impl : {"eager", "fused"}) {
      for (DType t : {DType::bf16, DType::fp16}) EXPECT_EQ(model_step_unsupported_reason({impl, t, llama}), "") << impl;
    }
  }
  EXPECT_EQ(model_step_unsupported_reason({"fused", DType::bf16, small_llama_shape(), true}), "");
  flops::ModelStepShape groups = small_llama_shape();
  groups.kv_heads = 3;  // does not divide 4 heads
  EXPECT_NE(model_step_unsupported_reason({"eager", DType::bf16, groups}), "");
  groups = small_llama_shape();
  groups.untied = false;
  EXPECT_NE(model_step_unsupported_reason({"eager", DType::bf16, groups}), "");
  // d 8 x ff 8 = 64 elements (one head of 8): w_up could not follow w_gate at a 128-element boundary.
  groups = small_llama_shape();
  groups.heads = groups.kv_heads = 1;
  groups.hidden = groups.ffn = 8;
  EXPECT_NE(model_step_unsupported_reason({"eager", DType::bf16, groups}), "");
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

// Host-only: the memory the harness checks before allocating, with and without a GPU. Every
// configuration of docs/model.md must fit an 80 GB GPU, the step and (while it verifies) the other
// implementation's step beside it, which shares the step's masters, moments and compute copy and
// adds its own gradients and activations: about 20 GB at the GPT-2 reference shape, 26 GB for
// GPT-2 small, and for Llama-3-8B's two blocks and head (1.5 G parameters, 27 GB with their
// gradients, moments and compute copy) 45 GB at b = 1 and 57 GB at b = 2.
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
  flops::ModelStepShape llama = flops::llama3_8b_block_shape();
  for (double batch : {1.0, 2.0}) {
    llama.batch = batch;
    for (const char* impl : {"eager", "fused"}) {
      for (DType t : {DType::bf16, DType::fp16}) {
        const double bytes = model_step_memory_bytes({impl, t, llama});
        EXPECT_GT(bytes, 27e9) << impl << " b " << batch;  // 18 bytes per parameter and more
        EXPECT_LT(bytes, 80e9) << impl << " b " << batch;
      }
    }
  }
  EXPECT_EQ(model_step_memory_bytes({"fused", DType::fp32, llama}), 0);
}

}  // namespace wflops
