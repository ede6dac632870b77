// cuBLAS / cuBLASLt / WMMA GEMM workloads against the fp64 reference, and the verification itself
// (it must catch a wrong result, not just pass). Skipped with a reason where there is no GPU.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/count_nonfinite.cuh"
#include "common/fill_random.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/gemm.hpp"
#include "gpu_test_util.hpp"
#include "numeric_formats.hpp"

namespace wflops {

namespace {

bool has_fp8() {
  int dev = 0, major = 0, minor = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
  return major * 10 + minor >= 89;
}

struct Case {
  GemmImpl impl;
  DType dtype;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return gemm_impl_name(info.param.impl) + "_" + std::string(dtype_name(info.param.dtype));
}

class GemmWorkloadTest : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST_P(GemmWorkloadTest, VerifiesAgainstFp64Reference) {
  WFLOPS_REQUIRE_GPU();
  const Case c = GetParam();
  if (c.dtype == DType::fp8_e4m3 && !has_fp8()) GTEST_SKIP() << "this GPU has no fp8 tensor cores";
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreate(&stream));
  // One tile-aligned shape, and (except fp8, which needs multiples of 16) a ragged one.
  std::vector<GemmShape> shapes = {{256, 192, 128}, {512, 1024, 4096}};
  if (c.dtype != DType::fp8_e4m3) shapes.push_back({129, 77, 64});
  for (const GemmShape& s : shapes) {
    SCOPED_TRACE(::testing::Message() << "m=" << s.m << " n=" << s.n << " k=" << s.k);
    auto w = make_gemm_workload(c.impl, c.dtype, s);
    w->allocate(2, stream);
    w->tune(stream);
    const Verification v = w->verify(stream);
    EXPECT_TRUE(v.ok) << v.detail;
    EXPECT_LT(v.rel_err, dtype_tolerance(c.dtype));
    // Launching on the second input set works too.
    w->launch(stream, 1);
    CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  CUDA_CHECK(cudaStreamDestroy(stream));
}

INSTANTIATE_TEST_SUITE_P(
    AllImplementations, GemmWorkloadTest,
    ::testing::Values(Case{GemmImpl::cublas, DType::fp32}, Case{GemmImpl::cublas, DType::tf32},
                      Case{GemmImpl::cublas, DType::fp16}, Case{GemmImpl::cublas, DType::bf16},
                      Case{GemmImpl::cublaslt, DType::fp32}, Case{GemmImpl::cublaslt, DType::bf16},
                      Case{GemmImpl::cublaslt, DType::fp8_e4m3}, Case{GemmImpl::cublaslt_auto, DType::tf32},
                      Case{GemmImpl::cublaslt_auto, DType::fp16}, Case{GemmImpl::cublaslt_auto, DType::bf16},
                      Case{GemmImpl::cublaslt_auto, DType::fp8_e4m3}, Case{GemmImpl::cublaslt_fastacc, DType::fp8_e4m3},
                      Case{GemmImpl::cublaslt_auto_fastacc, DType::fp8_e4m3}, Case{GemmImpl::wmma, DType::bf16},
                      Case{GemmImpl::wmma, DType::fp16}),
    case_name);

// Autotuning times every candidate behind the blocking kernel and records which it kept: an index
// into the heuristic's list, which the plain heuristic implementation does not report.
TEST(GemmAutotune, RecordsItsChoiceAmongTheHeuristicsCandidates) {
  WFLOPS_REQUIRE_GPU();
  testing::TestStream stream;
  auto tuned = make_gemm_workload(GemmImpl::cublaslt_auto, DType::bf16, {1024, 1024, 1024});
  const Verification v = testing::verify_then_launch(*tuned, stream.get());
  EXPECT_TRUE(v.ok) << v.detail;
  const auto counters = tuned->measured_counters();
  ASSERT_TRUE(counters.count("algo_index") && counters.count("algo_candidates"));
  EXPECT_GE(counters.at("algo_candidates"), 1);
  EXPECT_LE(counters.at("algo_candidates"), 8);
  EXPECT_GE(counters.at("algo_index"), 0);
  EXPECT_LT(counters.at("algo_index"), counters.at("algo_candidates"));
  EXPECT_NE(tuned->describe().find("of the heuristic's top"), std::string::npos) << tuned->describe();
  auto plain = make_gemm_workload(GemmImpl::cublaslt, DType::bf16, {1024, 1024, 1024});
  EXPECT_TRUE(testing::verify_then_launch(*plain, stream.get()).ok);
  EXPECT_TRUE(plain->measured_counters().empty()) << "the heuristic's first choice, nothing tuned";
}

TEST(GemmShapes, FastAccumulationIsAnFp8Mode) {
  // Needs no GPU.
  EXPECT_TRUE(gemm_impl_supports(GemmImpl::cublaslt_auto_fastacc, DType::fp8_e4m3));
  EXPECT_FALSE(gemm_impl_supports(GemmImpl::cublaslt_fastacc, DType::bf16));
  EXPECT_EQ(gemm_impl_name(GemmImpl::cublaslt_auto_fastacc), "cublaslt_auto_fastacc");
  EXPECT_NE(gemm_unsupported_reason(GemmImpl::cublaslt_fastacc, DType::fp16, {64, 64, 64}).find("no fp16"),
            std::string::npos);
}

TEST(GemmVerification, CatchesAWrongResultAndUnwrittenOutput) {
  WFLOPS_REQUIRE_GPU();
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreate(&stream));
  const GemmShape s{128, 64, 32};
  DeviceBuffer a(s.m * s.k * 2), b(s.n * s.k * 2), c(s.m * s.n * 2);
  CUDA_CHECK(kernels::fill_random(DType::bf16, a.get(), s.m * s.k, 1, stream));
  CUDA_CHECK(kernels::fill_random(DType::bf16, b.get(), s.n * s.k, 2, stream));
  // C filled with unrelated random numbers: finite, but wrong.
  CUDA_CHECK(kernels::fill_random(DType::bf16, c.get(), s.m * s.n, 3, stream));
  Verification v = verify_gemm_tn(DType::bf16, DType::bf16, a.get(), b.get(), c.get(), s, 1e-2, stream);
  EXPECT_FALSE(v.ok);
  EXPECT_GT(v.rel_err, 0.5);
  // One poisoned (never written) element is caught even if sampling would miss it.
  CUDA_CHECK(cudaMemsetAsync(static_cast<char*>(c.get()) + 2 * 1000, 0xFF, 2, stream));
  v = verify_gemm_tn(DType::bf16, DType::bf16, a.get(), b.get(), c.get(), s, 1e-2, stream);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.detail.find("NaN"), std::string::npos) << v.detail;
  CUDA_CHECK(cudaStreamDestroy(stream));
}

TEST(RandomInputs, FreshNonZeroAndExactInTf32) {
  WFLOPS_REQUIRE_GPU();
  const std::size_t n = 4096;
  DeviceBuffer d(n * 4);
  std::vector<float> h1(n), h2(n);
  CUDA_CHECK(kernels::fill_random(DType::tf32, d.get(), n, 11, nullptr));
  CUDA_CHECK(cudaMemcpy(h1.data(), d.get(), n * 4, cudaMemcpyDeviceToHost));
  CUDA_CHECK(kernels::fill_random(DType::tf32, d.get(), n, 12, nullptr));
  CUDA_CHECK(cudaMemcpy(h2.data(), d.get(), n * 4, cudaMemcpyDeviceToHost));
  int zeros = 0, same = 0;
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_GE(h1[i], -1.0f);
    EXPECT_LT(h1[i], 1.0f);
    std::uint32_t bits;
    std::memcpy(&bits, &h1[i], 4);
    EXPECT_EQ(bits & 0x1FFFu, 0u) << "tf32 inputs keep 10 mantissa bits";
    zeros += h1[i] == 0.0f;
    same += h1[i] == h2[i];
  }
  EXPECT_LT(zeros, 8);
  EXPECT_LT(same, 64) << "another seed gives other numbers";
}

TEST(CountNonFinite, CountsPoison) {
  WFLOPS_REQUIRE_GPU();
  const std::size_t n = 10000;
  DeviceBuffer d(n * 2), count(sizeof(unsigned long long));
  CUDA_CHECK(kernels::fill_random(DType::fp16, d.get(), n, 5, nullptr));
  CUDA_CHECK(cudaMemset(static_cast<char*>(d.get()) + 2 * 17, 0xFF, 2 * 3));  // 3 NaNs
  CUDA_CHECK(cudaMemset(count.get(), 0, count.bytes()));
  CUDA_CHECK(kernels::count_nonfinite(DType::fp16, d.get(), n, count.as<unsigned long long>(), nullptr));
  unsigned long long got = 0;
  CUDA_CHECK(cudaMemcpy(&got, count.get(), sizeof got, cudaMemcpyDeviceToHost));
  EXPECT_EQ(got, 3u);
}

TEST(GemmShapes, UnsupportedShapesAreRefusedWithAReason) {
  // Needs no GPU, but lives beside the workloads it guards.
  EXPECT_NE(gemm_unsupported_reason(GemmImpl::cublaslt, DType::fp8_e4m3, {100, 64, 64}).find("multiples of 16"),
            std::string::npos);
  EXPECT_NE(gemm_unsupported_reason(GemmImpl::cublas, DType::fp8_e4m3, {64, 64, 64}).find("no fp8"), std::string::npos);
  EXPECT_EQ(gemm_unsupported_reason(GemmImpl::cublas, DType::bf16, {129, 77, 64}), "");
}

}  // namespace wflops
