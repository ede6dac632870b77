// Attention workloads (unfused and fused, forward and backward) verified against the fp64 host
// reference on small shapes: causal and not, a sequence that is not a multiple of any tile
// (1000), head dims 64 and 128. The verification poisons every output with NaN, so a row the
// kernels forget (the ragged last tile) or a NaN from a masked row fails it.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "attention/flash_attention_fwd.cuh"
#include "common/fill_random.cuh"
#include "cuda/attention_workload.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "gpu_test_util.hpp"

namespace wflops {

namespace {

struct Case {
  AttentionImpl impl;
  AttentionPass pass;
  long head_dim;
  bool causal;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  return attention_impl_name(c.impl) + (c.pass == AttentionPass::forward ? "_fwd" : "_bwd") + "_d" +
         std::to_string(c.head_dim) + (c.causal ? "_causal" : "_full");
}

class AttentionWorkloadTest : public ::testing::TestWithParam<Case> {};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (AttentionImpl impl : {AttentionImpl::unfused, AttentionImpl::fused}) {
    for (AttentionPass pass : {AttentionPass::forward, AttentionPass::backward}) {
      for (long d : {64L, 128L}) {
        for (bool causal : {false, true}) cases.push_back({impl, pass, d, causal});
      }
    }
  }
  return cases;
}

}  // namespace

TEST_P(AttentionWorkloadTest, VerifiesAgainstFp64Reference) {
  WFLOPS_REQUIRE_GPU();
  const Case c = GetParam();
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreate(&stream));
  // Whole-slice references (s <= 512: 64 and 200 are tile-aligned and ragged), then sampled rows
  // of a longer ragged sequence (1000) and a single-row one.
  const std::vector<kernels::AttentionDims> shapes = {{2, 3, 64, c.head_dim, c.causal},
                                                      {1, 2, 200, c.head_dim, c.causal},
                                                      {1, 2, 1000, c.head_dim, c.causal},
                                                      {2, 1, 1, c.head_dim, c.causal}};
  for (DType dtype : {DType::bf16, DType::fp16}) {
    for (const auto& dims : shapes) {
      auto w = make_attention_workload({c.impl, c.pass, dtype, dims});
      w->allocate(1, stream);
      const Verification v = w->verify(stream);
      EXPECT_TRUE(v.ok) << dtype_name(dtype) << " s=" << dims.seq << ": " << v.detail;
      EXPECT_LT(v.rel_err, 1e-2);
      // A second verification draws fresh inputs and must pass as well (no state carried over).
      EXPECT_TRUE(w->verify(stream).ok);
      w->launch(stream, 0);
      CUDA_CHECK(cudaStreamSynchronize(stream));
    }
  }
  CUDA_CHECK(cudaStreamDestroy(stream));
}

INSTANTIATE_TEST_SUITE_P(AllImpls, AttentionWorkloadTest, ::testing::ValuesIn(all_cases()), case_name);

TEST(FlashAttention, CausalFirstRowIsFirstValueRowAndLseIsItsScore) {
  WFLOPS_REQUIRE_GPU();
  const kernels::AttentionDims dims{1, 1, 130, 64, true};
  const std::size_t n = static_cast<std::size_t>(dims.rows() * dims.head_dim);
  DeviceBuffer q(n * 2), k(n * 2), v(n * 2), o(n * 2), lse(static_cast<std::size_t>(dims.rows()) * 4);
  for (void* p : {q.get(), k.get(), v.get()}) CUDA_CHECK(kernels::fill_random(DType::bf16, p, n, 99, nullptr));
  CUDA_CHECK(kernels::flash_attention_forward(DType::bf16, q.get(), k.get(), v.get(), o.get(), lse.as<float>(), dims,
                                              nullptr));
  CUDA_CHECK(cudaDeviceSynchronize());
  testing::expect_first_causal_row(q.get(), k.get(), v.get(), o.get(), lse.as<float>());
}

TEST(FlashAttention, RefusesUnsupportedShapes) {
  WFLOPS_REQUIRE_GPU();
  const kernels::AttentionDims dims{1, 1, 64, 96, false};
  DeviceBuffer buf(64 * 96 * 2 * 4);
  EXPECT_EQ(
      kernels::flash_attention_forward(DType::bf16, buf.get(), buf.get(), buf.get(), buf.get(), nullptr, dims, nullptr),
      cudaErrorInvalidValue);
}

}  // namespace wflops
