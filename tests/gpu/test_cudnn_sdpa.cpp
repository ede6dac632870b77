// cuDNN's fused attention forward and backward (graph API) against the fp64 host reference, through
// the same workload verification as our kernels (NaN-poisoned outputs, fresh random inputs). Skips with
// the loader's reason where cuDNN is not installed; a cuDNN that loads but refuses the graph fails
// with the call, status and cuDNN's message.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/fill_random.cuh"
#include "cuda/attention_workload.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/cudnn_loader.hpp"
#include "cuda/cudnn_sdpa.hpp"
#include "cuda/device_buffer.hpp"
#include "gpu_test_util.hpp"

#define WFLOPS_REQUIRE_CUDNN()                                               \
  do {                                                                       \
    const std::string wflops_cudnn_ = ::wflops::cudnn::unavailable_reason(); \
    if (!wflops_cudnn_.empty()) GTEST_SKIP() << wflops_cudnn_;               \
  } while (0)

namespace wflops {

namespace {

struct Case {
  long seq, head_dim;
  bool causal;
  DType dtype;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  return std::string(dtype_name(c.dtype)) + "_s" + std::to_string(c.seq) + "_d" + std::to_string(c.head_dim) +
         (c.causal ? "_causal" : "_full");
}

// bf16 at both sequence lengths, both head dims, full and causal; then fp16 causal at the longer
// length with head dim 128.
std::vector<Case> shape_cases(long short_seq, long long_seq) {
  std::vector<Case> cases;
  for (long s : {short_seq, long_seq}) {
    for (long d : {64L, 128L}) {
      for (bool causal : {false, true}) cases.push_back({s, d, causal, DType::bf16});
    }
  }
  cases.push_back({long_seq, 128, true, DType::fp16});
  return cases;
}

std::vector<Case> all_cases() { return shape_cases(128, 1000); }

class CudnnSdpaTest : public ::testing::TestWithParam<Case> {};

}  // namespace

namespace {

// What the harness does before timing, twice (fresh inputs, same plan: nothing may carry over from
// one run to the next, e.g. the backward's dQ accumulator), then a launch on each of the two input
// sets (two variant packs per plan).
void verify_twice_and_launch(AttentionPass pass, const Case& c, const std::string& label_part) {
  const testing::TestStream stream;
  const kernels::AttentionDims dims{2, 3, c.seq, c.head_dim, c.causal};
  const AttentionCase attention{AttentionImpl::cudnn, pass, c.dtype, dims};
  auto w = make_attention_workload(attention);
  const Verification v = testing::verify_then_launch(*w, stream.get());  // launches set 1 too
  EXPECT_TRUE(v.ok) << v.detail << " [" << w->describe() << "]";
  EXPECT_LT(v.rel_err, 1e-2) << v.detail;
  EXPECT_NE(w->describe().find(label_part), std::string::npos) << w->describe();
  // The measured footprint adds the engine's workspace to the registered figure, never less.
  EXPECT_GE(w->measured_counters().at("mem_bytes"), attention_memory_bytes(attention));
  const Verification again = w->verify(stream.get());
  EXPECT_TRUE(again.ok) << again.detail;
  w->launch(stream.get(), 0);
  CUDA_CHECK(cudaStreamSynchronize(stream.get()));
}

}  // namespace

TEST_P(CudnnSdpaTest, ForwardVerifiesAgainstFp64Reference) {
  WFLOPS_REQUIRE_GPU();
  WFLOPS_REQUIRE_CUDNN();
  verify_twice_and_launch(AttentionPass::forward, GetParam(), "cuDNN 9.");
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudnnSdpaTest, ::testing::ValuesIn(all_cases()), case_name);

// The backward: dQ, dK, dV against the fp64 host reference through the workload's verification
// (NaN-poisoned gradients, fresh random inputs, O and L from cuDNN's forward checked too). s = 200 is
// not a multiple of any tile size.
std::vector<Case> backward_cases() { return shape_cases(128, 200); }

class CudnnSdpaBackwardTest : public ::testing::TestWithParam<Case> {};

TEST_P(CudnnSdpaBackwardTest, BackwardVerifiesAgainstFp64Reference) {
  WFLOPS_REQUIRE_GPU();
  WFLOPS_REQUIRE_CUDNN();
  verify_twice_and_launch(AttentionPass::backward, GetParam(), "graph layout");
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudnnSdpaBackwardTest, ::testing::ValuesIn(backward_cases()), case_name);

// Causal row 0 sees only key 0: O row 0 = V row 0 and its Stats = that one scaled score, which
// checks cuDNN's Stats against wflops' L convention (natural log-sum-exp of scaled scores) by hand.
TEST(CudnnSdpa, CausalFirstRowIsFirstValueRowAndStatsIsItsScore) {
  WFLOPS_REQUIRE_GPU();
  WFLOPS_REQUIRE_CUDNN();
  const kernels::AttentionDims dims{1, 1, 128, 64, true};
  const std::size_t n = static_cast<std::size_t>(dims.rows() * dims.head_dim);
  DeviceBuffer q(n * 2), k(n * 2), v(n * 2), o(n * 2), stats(static_cast<std::size_t>(dims.rows()) * 4);
  for (void* p : {q.get(), k.get(), v.get()}) CUDA_CHECK(kernels::fill_random(DType::bf16, p, n, 7, nullptr));
  cudnn::SdpaForward sdpa(DType::bf16, dims);
  DeviceBuffer ws(sdpa.workspace_bytes());
  sdpa.run(nullptr, q.get(), k.get(), v.get(), o.get(), stats.as<float>(), ws.get());
  CUDA_CHECK(cudaDeviceSynchronize());
  testing::expect_first_causal_row(q.get(), k.get(), v.get(), o.get(), stats.as<float>());
}

TEST(CudnnSdpa, UnsupportedShapeIsAnErrorNotACrash) {
  WFLOPS_REQUIRE_GPU();
  auto w = make_attention_workload({AttentionImpl::cudnn, AttentionPass::forward, DType::bf16, {1, 1, 64, 60, false}});
  try {
    w->allocate(1, nullptr);
    FAIL() << "d = 60 was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of 8"), std::string::npos) << e.what();
  }
}

}  // namespace wflops
