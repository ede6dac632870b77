// MLP step workloads (src/cuda/mlp_step.hpp) against the fp64 reference on small shapes, and the
// verification itself (it must fail when an input changes after the step). Skipped without a GPU.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/cuda_check.hpp"
#include "cuda/mlp_step.hpp"
#include "gpu_test_util.hpp"
#include "mlp_step_seam.hpp"

namespace wflops {

namespace {

struct Case {
  std::string word;
  DType dtype;
  bool forward_only;
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const MlpVariant& v : mlp_variants()) {
    for (DType t : {DType::bf16, DType::fp16}) {
      cases.push_back({v.word, t, false});
      cases.push_back({v.word, t, true});
    }
  }
  return cases;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.word + "_" + std::string(dtype_name(info.param.dtype)) + (info.param.forward_only ? "_fwd" : "");
}

using Stream = ::wflops::testing::TestStream;

Verification run_once(const MlpConfig& c, cudaStream_t stream) {
  return ::wflops::testing::verify_then_launch(*make_mlp_workload(c), stream);
}

Verification run_once_corrupting_input(const MlpConfig& c, cudaStream_t stream) {
  return ::wflops::testing::verify_then_launch(*::wflops::testing::make_mlp_workload_corrupting_input(c), stream);
}

class MlpStepTest : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST_P(MlpStepTest, VerifiesAgainstFp64Reference) {
  WFLOPS_REQUIRE_GPU();
  const Case p = GetParam();
  const MlpVariant v = *mlp_variant(p.word);
  Stream stream;
  // Aligned shapes, then a token count that is not a multiple of 8 and a d_ff that is not a
  // multiple of 128 (the ReLU bitmask's leading dimension is then padded).
  struct Shape {
    long d, d_ff, tokens;
  };
  for (const Shape s : {Shape{64, 256, 128}, Shape{128, 512, 1000}, Shape{64, 200, 100}}) {
    SCOPED_TRACE(::testing::Message() << "d=" << s.d << " d_ff=" << s.d_ff << " T=" << s.tokens);
    const MlpConfig c{v, p.dtype, s.d, s.d_ff, s.tokens, p.forward_only};
    try {
      const Verification r = run_once(c, stream.get());
      EXPECT_TRUE(r.ok) << r.detail;
    } catch (const std::runtime_error& e) {
      // Only cuBLASLt may refuse a shape, with a message that says which GEMM and why.
      EXPECT_TRUE(v.fused) << e.what();
      EXPECT_NE(std::string(e.what()).find("cuBLASLt"), std::string::npos) << e.what();
      EXPECT_NE(s.tokens % 8, 0) << "an aligned shape was refused: " << e.what();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, MlpStepTest, ::testing::ValuesIn(all_cases()), case_name);

TEST(MlpStepVerification, FailsWhenAnInputChangesAfterTheStep) {
  WFLOPS_REQUIRE_GPU();
  Stream stream;
  for (const char* word : {"linear", "mixed_linear", "unfused_gelu_residual", "fused_relu_residual"}) {
    SCOPED_TRACE(word);
    for (bool forward_only : {false, true}) {
      const MlpConfig c{*mlp_variant(word), DType::bf16, 64, 256, 128, forward_only};
      const Verification r = run_once_corrupting_input(c, stream.get());
      EXPECT_FALSE(r.ok) << r.detail;
    }
  }
}

TEST(MlpStepVerification, RefusesBadConfigurationsWithAReason) {
  WFLOPS_REQUIRE_GPU();
  Stream stream;
  MlpConfig c{*mlp_variant("linear"), DType::fp32, 64, 256, 128, false};
  auto w = make_mlp_workload(c);
  try {
    w->allocate(1, stream.get());
    ADD_FAILURE() << "an fp32 MLP step was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("fp16 or bf16"), std::string::npos) << e.what();
  }
  c = MlpConfig{*mlp_variant("fused_gelu"), DType::bf16, 64, 0, 128, false};
  EXPECT_NE(mlp_unsupported_reason(c), "");
}

TEST(MlpStepPhases, ReportsGemmElementwiseCastAndOptimizerParts) {
  WFLOPS_REQUIRE_GPU();
  const MlpConfig c{*mlp_variant("mixed_unfused_relu_residual"), DType::fp16, 64, 256, 128, false};
  auto w = make_mlp_workload(c);
  EXPECT_TRUE(w->has_phases());
  Stream stream;
  w->allocate(1, stream.get());
  const Verification r = w->verify(stream.get());
  EXPECT_TRUE(r.ok) << r.detail;
}

}  // namespace wflops
