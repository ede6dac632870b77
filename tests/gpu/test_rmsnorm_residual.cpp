// The fused residual-add + RMSNorm kernels (kernels/model/rmsnorm_residual.cuh) against their fp64 host
// references on random inputs: d = 4096 (Llama-3-8B) and 768 on the vector path, 1003 and a
// misaligned input on the element path, 37 rows and 1100 (more than the backward's 512 partial
// blocks); NaN-poisoned outputs with guards; the in-place backward and a dgamma bit-identical run to
// run; bad arguments refused. Skipped with a reason where there is no GPU.
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "gpu_test_util.hpp"
#include "model/rmsnorm_residual.cuh"
#include "model_kernel_test_util.hpp"
#include "reference/verify_error.hpp"

namespace wflops::kernels {

namespace {

using namespace ::wflops::testing;

class RmsNormKernelTest : public ResidualNormTest {};

}  // namespace

TEST_P(RmsNormKernelTest, ForwardAndBackwardMatchTheHost) {
  DeviceBuffer rrms = poisoned(DType::fp32, rows);
  DeviceBuffer workspace(rmsnorm_backward_workspace_bytes(rows, d));

  ASSERT_EQ(residual_rmsnorm_forward(t, a, b.get(), s.get(), gamma.get(), y.get(), rrms.as<float>(), rows, d, kNormEps,
                                     nullptr),
            cudaSuccess);
  ASSERT_EQ(rmsnorm_backward(t, dy.get(), s.get(), gamma.get(), rrms.as<float>(), dres.get(), ds.get(),
                             dgamma.as<float>(), false, workspace.get(), rows, d, nullptr),
            cudaSuccess);
  CUDA_CHECK(cudaDeviceSynchronize());

  const std::vector<double> hs = download(t, s.get(), n);
  expect_residual_sum(t, a, b.get(), hs, tol);
  const std::vector<double> hg = download(t, gamma.get(), d);
  std::vector<double> s_ref(n), y_ref(n), rrms_ref(rows);
  residual_rmsnorm_forward_host(hs.data(), nullptr, hg.data(), rows, d, kNormEps, s_ref.data(), y_ref.data(),
                                rrms_ref.data());
  EXPECT_LT(relative_error(download(t, y.get(), n), y_ref), tol) << "y";
  EXPECT_LT(relative_error(download(DType::fp32, rrms.get(), rows), rrms_ref), 1e-5) << "rrms";

  std::vector<double> ds_ref(n), dgamma_ref(d);
  const std::vector<double> hdres = download(t, dres.get(), n);
  rmsnorm_backward_host(download(t, dy.get(), n).data(), hs.data(), hg.data(), rrms_ref.data(), hdres.data(), rows, d,
                        ds_ref.data(), dgamma_ref.data());
  expect_input_gradient(download(t, ds.get(), n), ds_ref, hdres, tol);
  EXPECT_LT(relative_error(download(DType::fp32, dgamma.get(), d), dgamma_ref), tol) << "dgamma";

  expect_written_exactly({{t, s, n, "s"},
                          {t, y, n, "y"},
                          {t, ds, n, "ds"},
                          {DType::fp32, rrms, rows, "rrms"},
                          {DType::fp32, dgamma, d, "dgamma"}});
}

INSTANTIATE_TEST_SUITE_P(ModelWidths, RmsNormKernelTest,
                         ::testing::Values(NormCase{DType::bf16, 4096, 37, 0}, NormCase{DType::bf16, 4096, 1100, 0},
                                           NormCase{DType::fp16, 768, 1100, 0}, NormCase{DType::fp32, 1600, 37, 0},
                                           NormCase{DType::bf16, 1003, 1100, 0}, NormCase{DType::bf16, 768, 37, 1}),
                         norm_case_name);

TEST(RmsNormKernel, InPlaceBackwardIsDeterministic) {
  WFLOPS_REQUIRE_GPU();
  const DType t = DType::bf16;
  const std::size_t d = 4096, rows = 700, n = rows * d;
  DeviceBuffer x = random_buffer(t, n), gamma = random_buffer(t, d), dy = random_buffer(t, n),
               dres = random_buffer(t, n);
  DeviceBuffer y = poisoned(t, n), rrms = poisoned(DType::fp32, rows), ds = poisoned(t, n);
  DeviceBuffer g1 = poisoned(DType::fp32, d), g2 = poisoned(DType::fp32, d);
  DeviceBuffer workspace(rmsnorm_backward_workspace_bytes(rows, d));
  ASSERT_EQ(residual_rmsnorm_forward(t, x.get(), nullptr, nullptr, gamma.get(), y.get(), rrms.as<float>(), rows, d,
                                     kNormEps, nullptr),
            cudaSuccess);
  ASSERT_EQ(rmsnorm_backward(t, dy.get(), x.get(), gamma.get(), rrms.as<float>(), dres.get(), ds.get(), g1.as<float>(),
                             false, workspace.get(), rows, d, nullptr),
            cudaSuccess);
  ASSERT_EQ(rmsnorm_backward(t, dy.get(), x.get(), gamma.get(), rrms.as<float>(), dres.get(), dres.get(),
                             g2.as<float>(), false, workspace.get(), rows, d, nullptr),
            cudaSuccess);
  CUDA_CHECK(cudaDeviceSynchronize());
  expect_same_bits(ds, dres, n * 2);
  expect_same_bits(g1, g2, d * 4);
}

TEST(RmsNormKernel, RefusesBadArguments) {
  WFLOPS_REQUIRE_GPU();
  DeviceBuffer x(1 << 16), y(1 << 16), stats(4096);
  float* f = stats.as<float>();
  EXPECT_EQ(residual_rmsnorm_forward(DType::bf16, x.get(), nullptr, nullptr, x.get(), y.get(), f, 1, kRmsNormMaxDim + 1,
                                     kNormEps, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(
      residual_rmsnorm_forward(DType::bf16, x.get(), nullptr, nullptr, x.get(), x.get(), f, 4, 64, kNormEps, nullptr),
      cudaErrorInvalidValue);
  EXPECT_EQ(
      rmsnorm_backward(DType::bf16, x.get(), x.get(), x.get(), f, nullptr, y.get(), f, false, nullptr, 4, 64, nullptr),
      cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace wflops::kernels
