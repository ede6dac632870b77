// The MoE layer workload on small configurations: every GEMM implementation with both routings
// passes its verification (fp64 reference on sampled tokens, exact routing, sampled weight
// gradients), and crafted router weights give an expert with no token and one with all of them.
// ours_grouped (our kernel, device-side offsets) runs every case the grouped cuBLAS call runs.
// Skipped with a reason where there is no GPU.
#include <gtest/gtest.h>

#include <numeric>

#include "cuda/cuda_check.hpp"
#include "cuda/moe_layer.hpp"
#include "gpu_test_util.hpp"

namespace wflops {

namespace {

struct Case {
  MoeGemmImpl impl;
  moe::Routing routing;
  long d, e, g, tokens;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  return moe_gemm_impl_name(c.impl) + "_" + moe::routing_name(c.routing) + "_d" + std::to_string(c.d) + "_E" +
         std::to_string(c.e) + "_G" + std::to_string(c.g);
}

MoeConfig config(const Case& c, long dominant = -1) {
  MoeConfig m;
  m.d = c.d;
  m.experts = c.e;
  m.granularity = c.g;
  m.tokens = c.tokens;
  m.routing = c.routing;
  m.impl = c.impl;
  m.dominant_expert = dominant;
  return m;
}

class MoeLayerTest : public ::testing::TestWithParam<Case> {};

TEST_P(MoeLayerTest, VerifiesAgainstReference) {
  WFLOPS_REQUIRE_GPU();
  const Case c = GetParam();
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreate(&stream));
  MoeLayerWorkload w(config(c));
  w.allocate(2, stream);
  const Verification v = w.verify(stream);
  EXPECT_TRUE(v.ok) << v.detail;
  EXPECT_LT(v.rel_err, 1e-2);
  const std::vector<int>& counts = w.expert_counts();
  ASSERT_EQ(static_cast<long>(counts.size()), c.e * c.g);
  EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), 0L), c.tokens * c.g);  // T*G assignments
  if (c.routing == moe::Routing::expert_choice) {
    for (int n : counts) EXPECT_EQ(n, c.tokens / c.e);
    EXPECT_DOUBLE_EQ(w.load_imbalance(), 1.0);
  }
  // The second input set and the marked launch run too.
  w.launch(stream, 1);
  PhaseMarks none;
  w.launch_marked(stream, 0, none);
  CUDA_CHECK(cudaStreamSynchronize(stream));
  CUDA_CHECK(cudaStreamDestroy(stream));
}

INSTANTIATE_TEST_SUITE_P(Small, MoeLayerTest,
                         ::testing::Values(Case{MoeGemmImpl::grouped, moe::Routing::expert_choice, 64, 2, 2, 512},
                                           Case{MoeGemmImpl::loop, moe::Routing::expert_choice, 64, 2, 2, 512},
                                           Case{MoeGemmImpl::padded, moe::Routing::expert_choice, 64, 2, 2, 512},
                                           Case{MoeGemmImpl::grouped, moe::Routing::expert_choice, 128, 8, 4, 256},
                                           Case{MoeGemmImpl::grouped, moe::Routing::expert_choice, 96, 16, 1, 768},
                                           Case{MoeGemmImpl::grouped, moe::Routing::token_choice, 64, 2, 2, 300},
                                           Case{MoeGemmImpl::loop, moe::Routing::token_choice, 64, 2, 2, 300},
                                           Case{MoeGemmImpl::grouped, moe::Routing::token_choice, 128, 4, 8, 200},
                                           Case{MoeGemmImpl::ours, moe::Routing::expert_choice, 64, 2, 2, 512},
                                           Case{MoeGemmImpl::ours, moe::Routing::expert_choice, 128, 8, 4, 256},
                                           Case{MoeGemmImpl::ours, moe::Routing::expert_choice, 96, 16, 1, 768},
                                           Case{MoeGemmImpl::ours, moe::Routing::token_choice, 64, 2, 2, 300},
                                           Case{MoeGemmImpl::ours, moe::Routing::token_choice, 128, 4, 8, 200}),
                         case_name);

// Token choice, G = 1: expert 2 wins every token, experts 0, 1 and 3 get none (their weight
// gradients must be zeros, not NaN: the outputs are poisoned before the run).
TEST(MoeLayerCrafted, OneExpertTakesAllOthersNone) {
  WFLOPS_REQUIRE_GPU();
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreate(&stream));
  for (MoeGemmImpl impl : {MoeGemmImpl::grouped, MoeGemmImpl::loop, MoeGemmImpl::ours}) {
    SCOPED_TRACE(moe_gemm_impl_name(impl));
    MoeLayerWorkload w(config(Case{impl, moe::Routing::token_choice, 64, 4, 1, 300}, 2));
    w.allocate(1, stream);
    const Verification v = w.verify(stream);
    EXPECT_TRUE(v.ok) << v.detail;
    EXPECT_EQ(w.expert_counts(), (std::vector<int>{0, 0, 300, 0}));
    EXPECT_DOUBLE_EQ(w.load_imbalance(), 4.0);
    const auto counters = w.measured_counters();  // what the harness writes into the JSON
    EXPECT_DOUBLE_EQ(counters.at("load_imbalance"), 4.0);
    EXPECT_DOUBLE_EQ(counters.at("max_expert_tokens"), 300.0);
  }
  // G = 2 of 8 experts: expert 5 is in every token's top 2.
  for (MoeGemmImpl impl : {MoeGemmImpl::grouped, MoeGemmImpl::ours}) {
    SCOPED_TRACE(moe_gemm_impl_name(impl));
    MoeLayerWorkload w(config(Case{impl, moe::Routing::token_choice, 64, 4, 2, 300}, 5));
    w.allocate(1, stream);
    const Verification v = w.verify(stream);
    EXPECT_TRUE(v.ok) << v.detail;
    EXPECT_EQ(w.expert_counts()[5], 300);
  }
  CUDA_CHECK(cudaStreamDestroy(stream));
}

}  // namespace

}  // namespace wflops
