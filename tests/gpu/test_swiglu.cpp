// The SwiGLU kernels (kernels/elementwise/swiglu.cuh) against their double-precision host versions at odd sizes
// (ff = 1000 takes the vector path, ff = 1003 and a misaligned gu the scalar one; T = 37), with
// guard elements that must stay unwritten; the in-place backward; bad arguments refused; and the
// gated MLP step variants verified on small shapes, with a corrupted input that must fail the check.
// Skipped with a reason where there is no GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/fill_random.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/harness.hpp"
#include "cuda/mlp_step.hpp"
#include "elementwise/swiglu.cuh"
#include "gpu_test_util.hpp"
#include "mlp_step_seam.hpp"
#include "model_kernel_test_util.hpp"
#include "numeric_formats.hpp"
#include "reference/verify_error.hpp"

namespace wflops::kernels {

namespace {

using namespace ::wflops::testing;  // KernelCaseTest, download, poisoned (n + kGuard elements, NaN), offset_elements

constexpr std::size_t kTokens = 37;

void expect_guard_untouched(DType t, const DeviceBuffer& b, std::size_t n, const char* what) {
  const std::vector<double> all = download(t, b.get(), n + kGuard);
  for (std::size_t i = n; i < n + kGuard; ++i)
    EXPECT_TRUE(std::isnan(all[i])) << what << " wrote past its end at " << i;
}

// Host forward and backward of gu [T, 2 ff] (and da [T, ff]).
struct HostSwiglu {
  std::vector<double> a, dgu;
};
HostSwiglu host_swiglu(const std::vector<double>& gu, const std::vector<double>& da, std::size_t ff) {
  HostSwiglu h;
  h.a.resize(kTokens * ff);
  h.dgu.resize(kTokens * 2 * ff);
  for (std::size_t t = 0; t < kTokens; ++t) {
    for (std::size_t j = 0; j < ff; ++j) {
      const double g = gu[t * 2 * ff + j], u = gu[t * 2 * ff + ff + j];
      h.a[t * ff + j] = swiglu_host(g, u);
      swiglu_backward_host(da[t * ff + j], g, u, h.dgu[t * 2 * ff + j], h.dgu[t * 2 * ff + ff + j]);
    }
  }
  return h;
}

struct KernelCase {
  DType dtype;
  std::size_t ff;
  std::size_t gu_offset;  // elements: 1 makes every gu row misaligned (the scalar path)
};

std::string kernel_case_name(const ::testing::TestParamInfo<KernelCase>& info) {
  return std::string(dtype_name(info.param.dtype)) + "_ff" + std::to_string(info.param.ff) +
         (info.param.gu_offset ? "_misaligned" : "");
}

class SwigluKernelTest : public KernelCaseTest<KernelCase> {};

}  // namespace

TEST_P(SwigluKernelTest, FusedAndUnfusedMatchTheHost) {
  const std::size_t ff = p.ff, T = kTokens, off = p.gu_offset;

  DeviceBuffer gu_buf((T * 2 * ff + off) * dtype_bytes(t)), da((T * ff) * dtype_bytes(t));
  void* gu = offset_elements(gu_buf, t, off);
  CUDA_CHECK(fill_random(t, gu, T * 2 * ff, wflops::fresh_seed(), nullptr));
  CUDA_CHECK(fill_random(t, da.get(), T * ff, wflops::fresh_seed(), nullptr));
  DeviceBuffer a = poisoned(t, T * ff), dgu = poisoned(t, T * 2 * ff);
  DeviceBuffer s = poisoned(t, T * ff), a2 = poisoned(t, T * ff), da_u = poisoned(t, T * ff);
  DeviceBuffer dgu2 = poisoned(t, T * 2 * ff);

  // Fused: one pass each way.
  ASSERT_EQ(swiglu_forward(t, gu, a.get(), T, ff, nullptr), cudaSuccess);
  ASSERT_EQ(swiglu_backward(t, da.get(), gu, dgu.get(), T, ff, nullptr), cudaSuccess);
  // Unfused, as the eager step runs it: s = silu(g), a = s * u; da * u, du = da * s, dg = (da * u) silu'(g).
  const void* up = static_cast<const char*>(gu) + ff * dtype_bytes(t);
  ASSERT_EQ(silu_forward_2d(t, gu, 2 * ff, s.get(), ff, T, ff, nullptr), cudaSuccess);
  ASSERT_EQ(multiply_2d(t, s.get(), ff, up, 2 * ff, a2.get(), ff, T, ff, nullptr), cudaSuccess);
  ASSERT_EQ(multiply_2d(t, da.get(), ff, up, 2 * ff, da_u.get(), ff, T, ff, nullptr), cudaSuccess);
  ASSERT_EQ(multiply_2d(t, da.get(), ff, s.get(), ff, offset_elements(dgu2, t, ff), 2 * ff, T, ff, nullptr),
            cudaSuccess);
  ASSERT_EQ(silu_backward_2d(t, da_u.get(), ff, gu, 2 * ff, dgu2.get(), 2 * ff, T, ff, nullptr), cudaSuccess);
  CUDA_CHECK(cudaDeviceSynchronize());

  const HostSwiglu ref = host_swiglu(download(t, gu, T * 2 * ff), download(t, da.get(), T * ff), ff);
  EXPECT_LT(relative_error(download(t, a.get(), T * ff), ref.a), tol);
  EXPECT_LT(relative_error(download(t, dgu.get(), T * 2 * ff), ref.dgu), tol);
  EXPECT_LT(relative_error(download(t, a2.get(), T * ff), ref.a), tol);
  EXPECT_LT(relative_error(download(t, dgu2.get(), T * 2 * ff), ref.dgu), tol);
  // Each half of dgu on its own (a swapped or missing half fails here even if the other is large).
  const std::vector<double> got = download(t, dgu.get(), T * 2 * ff);
  for (int half = 0; half < 2; ++half) {
    std::vector<double> g, r;
    for (std::size_t row = 0; row < T; ++row) {
      for (std::size_t j = 0; j < ff; ++j) {
        g.push_back(got[row * 2 * ff + half * ff + j]);
        r.push_back(ref.dgu[row * 2 * ff + half * ff + j]);
      }
    }
    EXPECT_LT(relative_error(g, r), tol) << (half ? "du" : "dg");
  }
  expect_guard_untouched(t, a, T * ff, "a");
  expect_guard_untouched(t, dgu, T * 2 * ff, "dgu");
  expect_guard_untouched(t, a2, T * ff, "unfused a");
  expect_guard_untouched(t, dgu2, T * 2 * ff, "unfused dgu");
}

INSTANTIATE_TEST_SUITE_P(OddSizes, SwigluKernelTest,
                         ::testing::Values(KernelCase{DType::bf16, 1000, 0}, KernelCase{DType::bf16, 1003, 0},
                                           KernelCase{DType::fp16, 1000, 0}, KernelCase{DType::fp16, 1003, 0},
                                           KernelCase{DType::fp32, 1000, 0}, KernelCase{DType::fp32, 1003, 0},
                                           KernelCase{DType::bf16, 1000, 1}),
                         kernel_case_name);

TEST(SwigluKernel, BackwardInPlaceEqualsOutOfPlace) {
  WFLOPS_REQUIRE_GPU();
  const DType t = DType::bf16;
  const std::size_t ff = 1000, n = kTokens * 2 * ff;
  DeviceBuffer gu(n * 2), da(kTokens * ff * 2), out(n * 2), in_place(n * 2);
  CUDA_CHECK(fill_random(t, gu.get(), n, wflops::fresh_seed(), nullptr));
  CUDA_CHECK(fill_random(t, da.get(), kTokens * ff, wflops::fresh_seed(), nullptr));
  CUDA_CHECK(cudaMemcpy(in_place.get(), gu.get(), n * 2, cudaMemcpyDeviceToDevice));
  ASSERT_EQ(swiglu_backward(t, da.get(), gu.get(), out.get(), kTokens, ff, nullptr), cudaSuccess);
  ASSERT_EQ(swiglu_backward(t, da.get(), in_place.get(), in_place.get(), kTokens, ff, nullptr), cudaSuccess);
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<unsigned char> x(n * 2), y(n * 2);
  CUDA_CHECK(cudaMemcpy(x.data(), out.get(), x.size(), cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(y.data(), in_place.get(), y.size(), cudaMemcpyDeviceToHost));
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size()), 0);
}

TEST(SwigluKernel, RefusesBadArguments) {
  WFLOPS_REQUIRE_GPU();
  DeviceBuffer a(4096), b(4096);
  EXPECT_EQ(swiglu_forward(DType::bf16, nullptr, a.get(), 4, 8, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(swiglu_backward(DType::bf16, a.get(), b.get(), a.get(), 4, 8, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(multiply_2d(DType::bf16, a.get(), 4, b.get(), 8, a.get(), 8, 4, 8, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(swiglu_forward(DType::fp8_e4m3, a.get(), b.get(), 4, 8, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(swiglu_forward(DType::bf16, nullptr, nullptr, 0, 8, nullptr), cudaSuccess);  // nothing to do
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace wflops::kernels

namespace wflops {

namespace {

using Stream = ::wflops::testing::TestStream;

Verification run_once(const MlpConfig& c, cudaStream_t stream) {
  return ::wflops::testing::verify_then_launch(*make_mlp_workload(c), stream);
}

Verification run_once_corrupting_input(const MlpConfig& c, cudaStream_t stream) {
  return ::wflops::testing::verify_then_launch(*::wflops::testing::make_mlp_workload_corrupting_input(c), stream);
}

}  // namespace

TEST(SwigluStep, VariantsVerifyOnSmallShapes) {
  WFLOPS_REQUIRE_GPU();
  Stream stream;
  struct Shape {
    long d, d_ff, tokens;
  };
  for (const char* word : {"fused_swiglu", "unfused_swiglu"}) {
    for (DType t : {DType::bf16, DType::fp16}) {
      for (bool forward_only : {false, true}) {
        for (const Shape s : {Shape{64, 256, 128}, Shape{96, 1003, 37}, Shape{128, 1000, 37}}) {
          SCOPED_TRACE(::testing::Message() << word << " " << dtype_name(t) << (forward_only ? " fwd" : " step")
                                            << " d=" << s.d << " d_ff=" << s.d_ff << " T=" << s.tokens);
          const Verification r = run_once({*mlp_variant(word), t, s.d, s.d_ff, s.tokens, forward_only}, stream.get());
          EXPECT_TRUE(r.ok) << r.detail;
          EXPECT_NE(r.detail.find(forward_only ? "y" : "dgu"), std::string::npos) << r.detail;
        }
      }
    }
  }
}

TEST(SwigluStep, VerificationFailsWhenAnInputChangesAfterTheStep) {
  WFLOPS_REQUIRE_GPU();
  Stream stream;
  for (const char* word : {"fused_swiglu", "unfused_swiglu"}) {
    for (bool forward_only : {false, true}) {
      SCOPED_TRACE(::testing::Message() << word << (forward_only ? " fwd" : " step"));
      const Verification r =
          run_once_corrupting_input({*mlp_variant(word), DType::bf16, 64, 256, 128, forward_only}, stream.get());
      EXPECT_FALSE(r.ok) << r.detail;
    }
  }
}

TEST(SwigluStep, RefusesAGatedStepWithBiases) {
  WFLOPS_REQUIRE_GPU();
  Stream stream;
  MlpVariant v = *mlp_variant("fused_swiglu");
  v.bias = true;
  auto w = make_mlp_workload({v, DType::bf16, 64, 256, 128, false});
  try {
    w->allocate(1, stream.get());
    ADD_FAILURE() << "a gated step with biases was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("SwiGLU"), std::string::npos) << e.what();
  }
}

}  // namespace wflops
