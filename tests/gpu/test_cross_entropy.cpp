// The fused softmax + cross-entropy kernel (kernels/model/cross_entropy.cuh) against its fp64 host
// reference: GPT-2's vocabulary 50257 unpadded (element path) and padded to 50304 (vector path,
// padding columns must get a zero gradient), small vocabularies, logits spread over [-8, 8) so the
// softmax is far from uniform; targets on the first and last columns and ignored tokens;
// NaN-poisoned outputs with guards; in place equals out of place; the deterministic mean.
// Skipped with a reason where there is no GPU.
#include <gtest/gtest.h>

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "gpu_test_util.hpp"
#include "model/cross_entropy.cuh"
#include "model_kernel_test_util.hpp"
#include "reference/verify_error.hpp"

namespace wflops::kernels {

namespace {

using namespace ::wflops::testing;

constexpr std::size_t kTokens = 37;

struct Case {
  DType dtype;
  std::size_t vocab, ld;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return std::string(dtype_name(info.param.dtype)) + "_V" + std::to_string(info.param.vocab) + "_ld" +
         std::to_string(info.param.ld);
}

class CrossEntropyKernelTest : public KernelCaseTest<Case> {};

// Random logits in [-8, 8) over the whole [T, ld] (padding included: the kernel must ignore it).
std::vector<double> random_logits(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-8, 8);
  std::vector<double> z(n);
  for (double& x : z) x = u(rng);
  return z;
}

// Targets: random, with token 0 on column 0, token 1 on the last column, tokens 2, 5 and 7 ignored.
std::vector<int> random_targets(std::size_t vocab, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> u(0, static_cast<int>(vocab) - 1);
  std::vector<int> t(kTokens);
  for (int& x : t) x = u(rng);
  t[0] = 0;
  t[1] = static_cast<int>(vocab) - 1;
  t[2] = -1;
  t[5] = -100;
  t[7] = static_cast<int>(vocab);  // out of range: ignored as well, nothing past the row read
  return t;
}

}  // namespace

TEST_P(CrossEntropyKernelTest, LossAndGradientMatchTheHost) {
  const std::size_t V = p.vocab, ld = p.ld, n = kTokens * ld;
  // fp16 needs a loss scale, as fp16 training uses: p / T for V = 50257 is mostly below fp16's
  // smallest normal (6.1e-5), where its subnormals' fixed step of 6e-8 alone would cost ~1% of the
  // gradient's norm. 1024 / T lifts the large probabilities into the normal range.
  const float scale = (t == DType::fp16 ? 1024.0f : 1.0f) / kTokens;

  DeviceBuffer logits = upload(t, random_logits(n, fresh_seed()));
  const std::vector<int> targets = random_targets(V, fresh_seed());
  DeviceBuffer d_targets = upload_ints(targets);
  DeviceBuffer dlogits = poisoned(t, n), losses = poisoned(DType::fp32, kTokens), mean = poisoned(DType::fp32, 1);
  DeviceBuffer forward_only = poisoned(DType::fp32, kTokens);
  ASSERT_EQ(softmax_cross_entropy(t, logits.get(), dlogits.get(), d_targets.as<int>(), losses.as<float>(), kTokens, V,
                                  ld, scale, nullptr),
            cudaSuccess);
  ASSERT_EQ(softmax_cross_entropy(t, logits.get(), nullptr, d_targets.as<int>(), forward_only.as<float>(), kTokens, V,
                                  ld, scale, nullptr),
            cudaSuccess);
  ASSERT_EQ(mean_loss(losses.as<float>(), kTokens, mean.as<float>(), nullptr), cudaSuccess);
  CUDA_CHECK(cudaDeviceSynchronize());

  const std::vector<double> z = download(t, logits.get(), n), got = download(t, dlogits.get(), n);
  std::vector<double> loss_ref(kTokens), dz_ref(n, 0.0);
  double mean_ref = 0;
  for (std::size_t r = 0; r < kTokens; ++r) {
    const int target = targets[r] < static_cast<int>(V) ? targets[r] : -1;  // the kernel ignores both
    loss_ref[r] = softmax_cross_entropy_host(&z[r * ld], V, target, scale, &dz_ref[r * ld]);
    mean_ref += loss_ref[r] / kTokens;
  }
  EXPECT_LT(relative_error(download(DType::fp32, losses.get(), kTokens), loss_ref), 1e-5) << "losses";
  expect_same_bits(losses, forward_only, kTokens * 4);
  EXPECT_NEAR(download(DType::fp32, mean.get(), 1)[0], mean_ref, 1e-5 * mean_ref) << "mean loss";
  EXPECT_LT(relative_error(got, dz_ref), tol) << "dlogits";
  // The columns off the target alone: the -1 at each target dominates the norm and could hide them.
  std::vector<double> off_got, off_ref;
  for (std::size_t r = 0; r < kTokens; ++r) {
    for (std::size_t j = 0; j < V; ++j) {
      if (static_cast<int>(j) == targets[r] || targets[r] < 0 || targets[r] >= static_cast<int>(V)) continue;
      off_got.push_back(got[r * ld + j]);
      off_ref.push_back(dz_ref[r * ld + j]);
    }
  }
  EXPECT_LT(relative_error(off_got, off_ref), tol) << "dlogits off the targets";
  // Padding columns and ignored tokens: exactly zero.
  for (std::size_t r = 0; r < kTokens; ++r) {
    const bool ignored = targets[r] < 0 || targets[r] >= static_cast<int>(V);
    for (std::size_t j = ignored ? 0 : V; j < ld; ++j) ASSERT_EQ(got[r * ld + j], 0.0) << r << " " << j;
  }
  expect_written_exactly(t, dlogits.get(), n, "dlogits");
  expect_written_exactly(DType::fp32, losses.get(), kTokens, "losses");
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, CrossEntropyKernelTest,
                         ::testing::Values(Case{DType::bf16, 50257, 50257}, Case{DType::bf16, 50257, 50304},
                                           Case{DType::fp16, 50257, 50304}, Case{DType::fp16, 1000, 1000},
                                           Case{DType::bf16, 512, 512}, Case{DType::bf16, 37, 40},
                                           Case{DType::fp32, 50257, 50260}, Case{DType::fp32, 1003, 1003}),
                         case_name);

TEST(CrossEntropyKernel, RefusesBadArguments) {
  WFLOPS_REQUIRE_GPU();
  DeviceBuffer z(4096), targets(64), losses(64);
  const int* tg = targets.as<int>();
  float* l = losses.as<float>();
  EXPECT_EQ(softmax_cross_entropy(DType::bf16, z.get(), z.get(), tg, l, 4, 64, 32, 1, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(softmax_cross_entropy(DType::bf16, z.get(), z.get(), tg, l, 4, 0, 64, 1, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(softmax_cross_entropy(DType::bf16, z.get(), z.get(), nullptr, l, 4, 64, 64, 1, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(softmax_cross_entropy(DType::fp8_e4m3, z.get(), z.get(), tg, l, 4, 64, 64, 1, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(mean_loss(l, 0, l, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST(CrossEntropyKernel, InPlaceEqualsOutOfPlace) {
  WFLOPS_REQUIRE_GPU();
  const DType t = DType::bf16;
  const std::size_t V = 50257, ld = 50304, n = kTokens * ld;
  DeviceBuffer logits = upload(t, random_logits(n, fresh_seed()));
  DeviceBuffer d_targets = upload_ints(random_targets(V, fresh_seed()));
  DeviceBuffer out(n * 2), in_place(n * 2), l1(kTokens * 4), l2(kTokens * 4);
  CUDA_CHECK(cudaMemcpy(in_place.get(), logits.get(), n * 2, cudaMemcpyDeviceToDevice));
  ASSERT_EQ(softmax_cross_entropy(t, logits.get(), out.get(), d_targets.as<int>(), l1.as<float>(), kTokens, V, ld, 0.5f,
                                  nullptr),
            cudaSuccess);
  ASSERT_EQ(softmax_cross_entropy(t, in_place.get(), in_place.get(), d_targets.as<int>(), l2.as<float>(), kTokens, V,
                                  ld, 0.5f, nullptr),
            cudaSuccess);
  CUDA_CHECK(cudaDeviceSynchronize());
  expect_same_bits(out, in_place, n * 2);
  expect_same_bits(l1, l2, kTokens * 4);
}

}  // namespace wflops::kernels
