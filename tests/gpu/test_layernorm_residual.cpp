// The fused residual-add + LayerNorm kernels (kernels/model/layernorm_residual.cuh) against their fp64
// host references on random inputs: the model widths 768, 1600 and 4096 (vector path), 1003 and a
// misaligned input (element path), 37 rows and 1100 rows (more rows than the backward's 512
// partial blocks, so blocks own several rows); NaN-poisoned outputs with guards that must stay
// unwritten; the in-place backward; dgamma bit-identical run to run; bad arguments refused.
// Skipped with a reason where there is no GPU.
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "gpu_test_util.hpp"
#include "model/layernorm_residual.cuh"
#include "model_kernel_test_util.hpp"
#include "reference/verify_error.hpp"

namespace wflops::kernels {

namespace {

using namespace ::wflops::testing;

class LayerNormKernelTest : public ResidualNormTest {};

}  // namespace

INSTANTIATE_TEST_SUITE_P(ModelWidths, LayerNormKernelTest,
                         ::testing::Values(NormCase{DType::bf16, 768, 37, 0}, NormCase{DType::bf16, 1600, 1100, 0},
                                           NormCase{DType::bf16, 4096, 37, 0}, NormCase{DType::fp16, 1600, 37, 0},
                                           NormCase{DType::fp16, 768, 1100, 0}, NormCase{DType::fp32, 1600, 37, 0},
                                           NormCase{DType::bf16, 1003, 37, 0}, NormCase{DType::fp16, 1003, 1100, 0},
                                           NormCase{DType::bf16, 768, 37, 1}),
                         norm_case_name);

TEST_P(LayerNormKernelTest, ForwardAndBackwardMatchTheHost) {
  // LayerNorm's own: beta and its gradient, and the mean beside rstd.
  DeviceBuffer beta = random_buffer(t, d), dbeta = poisoned(DType::fp32, d);
  DeviceBuffer mean = poisoned(DType::fp32, rows), rstd = poisoned(DType::fp32, rows);
  DeviceBuffer workspace(layernorm_backward_workspace_bytes(rows, d));

  ASSERT_EQ(residual_layernorm_forward(t, a, b.get(), s.get(), gamma.get(), beta.get(), y.get(), mean.as<float>(),
                                       rstd.as<float>(), rows, d, kNormEps, nullptr),
            cudaSuccess);
  ASSERT_EQ(
      layernorm_backward(t, dy.get(), s.get(), gamma.get(), mean.as<float>(), rstd.as<float>(), dres.get(), ds.get(),
                         dgamma.as<float>(), dbeta.as<float>(), false, workspace.get(), rows, d, nullptr),
      cudaSuccess);
  CUDA_CHECK(cudaDeviceSynchronize());

  // s against a + b; the rest against the reference run on s as stored (the kernel normalises the
  // rounded sum, by design).
  const std::vector<double> hs = download(t, s.get(), n);
  expect_residual_sum(t, a, b.get(), hs, tol);

  const std::vector<double> hg = download(t, gamma.get(), d), hbeta = download(t, beta.get(), d);
  std::vector<double> s_ref(n), y_ref(n), mean_ref(rows), rstd_ref(rows);
  residual_layernorm_forward_host(hs.data(), nullptr, hg.data(), hbeta.data(), rows, d, kNormEps, s_ref.data(),
                                  y_ref.data(), mean_ref.data(), rstd_ref.data());
  EXPECT_LT(relative_error(download(t, y.get(), n), y_ref), tol) << "y";
  EXPECT_LT(relative_error(download(DType::fp32, mean.get(), rows), mean_ref), 1e-5) << "mean";
  EXPECT_LT(relative_error(download(DType::fp32, rstd.get(), rows), rstd_ref), 1e-5) << "rstd";

  std::vector<double> ds_ref(n), dgamma_ref(d), dbeta_ref(d);
  const std::vector<double> hdy = download(t, dy.get(), n), hdres = download(t, dres.get(), n);
  layernorm_backward_host(hdy.data(), hs.data(), hg.data(), mean_ref.data(), rstd_ref.data(), hdres.data(), rows, d,
                          ds_ref.data(), dgamma_ref.data(), dbeta_ref.data());
  expect_input_gradient(download(t, ds.get(), n), ds_ref, hdres, tol);
  EXPECT_LT(relative_error(download(DType::fp32, dgamma.get(), d), dgamma_ref), tol) << "dgamma";
  EXPECT_LT(relative_error(download(DType::fp32, dbeta.get(), d), dbeta_ref), tol) << "dbeta";

  expect_written_exactly({{t, s, n, "s"},
                          {t, y, n, "y"},
                          {t, ds, n, "ds"},
                          {DType::fp32, mean, rows, "mean"},
                          {DType::fp32, rstd, rows, "rstd"},
                          {DType::fp32, dgamma, d, "dgamma"},
                          {DType::fp32, dbeta, d, "dbeta"}});
}

TEST(LayerNormKernel, PlainLayerNormAndInPlaceBackward) {
  WFLOPS_REQUIRE_GPU();
  const DType t = DType::bf16;
  const std::size_t d = 768, rows = 600, n = rows * d;
  DeviceBuffer x = random_buffer(t, n), gamma = random_buffer(t, d), beta = random_buffer(t, d),
               dy = random_buffer(t, n), dres = random_buffer(t, n);
  DeviceBuffer y = poisoned(t, n), mean = poisoned(DType::fp32, rows), rstd = poisoned(DType::fp32, rows);
  DeviceBuffer ds = poisoned(t, n), dg1 = poisoned(DType::fp32, d), db1 = poisoned(DType::fp32, d);
  DeviceBuffer dg2 = poisoned(DType::fp32, d), db2 = poisoned(DType::fp32, d);
  DeviceBuffer workspace(layernorm_backward_workspace_bytes(rows, d));
  const std::vector<double> hdy = download(t, dy.get(), n);  // before the last call overwrites dy
  // No b: a LayerNorm of x alone, s not written.
  ASSERT_EQ(residual_layernorm_forward(t, x.get(), nullptr, nullptr, gamma.get(), beta.get(), y.get(), mean.as<float>(),
                                       rstd.as<float>(), rows, d, kNormEps, nullptr),
            cudaSuccess);
  ASSERT_EQ(layernorm_backward(t, dy.get(), x.get(), gamma.get(), mean.as<float>(), rstd.as<float>(), dres.get(),
                               ds.get(), dg1.as<float>(), db1.as<float>(), false, workspace.get(), rows, d, nullptr),
            cudaSuccess);
  // In place over d_residual, and dgamma/dbeta accumulated onto a first copy: twice the sums.
  ASSERT_EQ(layernorm_backward(t, dy.get(), x.get(), gamma.get(), mean.as<float>(), rstd.as<float>(), dres.get(),
                               dres.get(), dg1.as<float>(), db1.as<float>(), true, workspace.get(), rows, d, nullptr),
            cudaSuccess);
  ASSERT_EQ(layernorm_backward(t, dy.get(), x.get(), gamma.get(), mean.as<float>(), rstd.as<float>(), nullptr, dy.get(),
                               dg2.as<float>(), db2.as<float>(), false, workspace.get(), rows, d, nullptr),
            cudaSuccess);
  CUDA_CHECK(cudaDeviceSynchronize());

  const std::vector<double> hx = download(t, x.get(), n), hg = download(t, gamma.get(), d),
                            hb = download(t, beta.get(), d);
  std::vector<double> s_ref(n), y_ref(n), mean_ref(rows), rstd_ref(rows);
  residual_layernorm_forward_host(hx.data(), nullptr, hg.data(), hb.data(), rows, d, kNormEps, s_ref.data(),
                                  y_ref.data(), mean_ref.data(), rstd_ref.data());
  EXPECT_LT(relative_error(download(t, y.get(), n), y_ref), dtype_tolerance(t));
  // ds written out of place and in place over d_residual: the same bits.
  expect_same_bits(ds, dres, n * 2);
  // dy overwritten by the LayerNorm gradient alone (no residual) is the host's too.
  std::vector<double> ds_ref(n), dg_ref(d), db_ref(d);
  layernorm_backward_host(hdy.data(), hx.data(), hg.data(), mean_ref.data(), rstd_ref.data(), nullptr, rows, d,
                          ds_ref.data(), dg_ref.data(), db_ref.data());
  EXPECT_LT(relative_error(download(t, dy.get(), n), ds_ref), dtype_tolerance(t)) << "LayerNorm gradient over dy";
  EXPECT_LT(relative_error(download(DType::fp32, dg2.get(), d), dg_ref), dtype_tolerance(t));
  // Deterministic: dgamma accumulated onto itself is exactly twice the first run's (x + x is exact).
  const std::vector<double> g_twice = download(DType::fp32, dg1.get(), d);
  const std::vector<double> g_once = download(DType::fp32, dg2.get(), d);
  const std::vector<double> b_twice = download(DType::fp32, db1.get(), d);
  const std::vector<double> b_once = download(DType::fp32, db2.get(), d);
  for (std::size_t c = 0; c < d; ++c) {
    ASSERT_EQ(g_twice[c], 2 * g_once[c]) << c;
    ASSERT_EQ(b_twice[c], 2 * b_once[c]) << c;
  }
}

TEST(LayerNormKernel, RefusesBadArguments) {
  WFLOPS_REQUIRE_GPU();
  DeviceBuffer x(1 << 16), y(1 << 16), stats(4096), ws(1 << 16);
  float* f = stats.as<float>();
  const DType t = DType::bf16;
  // d past the shared-memory limit, y aliasing an input, b without s, a missing workspace, fp8.
  EXPECT_EQ(residual_layernorm_forward(t, x.get(), nullptr, nullptr, x.get(), x.get(), y.get(), f, f, 1,
                                       kLayerNormMaxDim + 1, kNormEps, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(residual_layernorm_forward(t, x.get(), nullptr, nullptr, x.get(), x.get(), x.get(), f, f, 4, 64, kNormEps,
                                       nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(residual_layernorm_forward(t, x.get(), y.get(), nullptr, x.get(), x.get(), ws.get(), f, f, 4, 64, kNormEps,
                                       nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(
      layernorm_backward(t, x.get(), x.get(), x.get(), f, f, nullptr, y.get(), f, f, false, nullptr, 4, 64, nullptr),
      cudaErrorInvalidValue);
  EXPECT_EQ(residual_layernorm_forward(DType::fp8_e4m3, x.get(), nullptr, nullptr, x.get(), x.get(), y.get(), f, f, 4,
                                       64, kNormEps, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace wflops::kernels
