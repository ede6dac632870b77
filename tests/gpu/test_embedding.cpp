// The token + position embedding kernels (kernels/model/embedding.cuh) against their fp64 host
// references: d = 768 and 1600 (vector path) and 1003 (element path), ids drawn mostly from a few
// frequent tokens so runs are long, plus the vocabulary's first and last ids and two outside it;
// gradients added onto random fp32 values (rows of absent tokens must keep theirs exactly); the
// backward bit-identical run to run; no position table; bad arguments refused. Skipped without a GPU.
#include <gtest/gtest.h>

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "gpu_test_util.hpp"
#include "model/embedding.cuh"
#include "model_kernel_test_util.hpp"
#include "reference/verify_error.hpp"

namespace wflops::kernels {

namespace {

using namespace ::wflops::testing;

constexpr std::size_t kVocab = 1000, kSeq = 64, kBatches = 5, kTokens = kSeq * kBatches;

struct Case {
  DType dtype;
  std::size_t d;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return std::string(dtype_name(info.param.dtype)) + "_d" + std::to_string(info.param.d);
}

// Three in four ids from the 8 most frequent tokens (long runs after the sort), the rest anywhere.
std::vector<int> random_tokens(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> any(0, static_cast<int>(kVocab) - 1), frequent(0, 7), pick(0, 3);
  std::vector<int> t(kTokens);
  for (int& x : t) x = pick(rng) == 0 ? any(rng) : frequent(rng);
  t[3] = 0;
  t[10] = static_cast<int>(kVocab) - 1;
  t[20] = static_cast<int>(kVocab);  // outside the table: ignored by the kernels and the reference
  t[21] = -3;
  return t;
}

class EmbeddingKernelTest : public KernelCaseTest<Case> {};

}  // namespace

TEST_P(EmbeddingKernelTest, ForwardAndBackwardMatchTheHost) {
  const std::size_t d = p.d, n = kTokens * d;

  const std::vector<int> tokens = random_tokens(fresh_seed());
  DeviceBuffer d_tokens = upload_ints(tokens);
  DeviceBuffer wte = random_buffer(t, kVocab * d), wpe = random_buffer(t, kSeq * d), dout = random_buffer(t, n);
  DeviceBuffer out = poisoned(t, n);
  DeviceBuffer dwte = random_buffer(DType::fp32, kVocab * d), dwpe = random_buffer(DType::fp32, kSeq * d);
  const std::vector<double> dwte0 = download(DType::fp32, dwte.get(), kVocab * d);
  const std::vector<double> dwpe0 = download(DType::fp32, dwpe.get(), kSeq * d);
  std::size_t ws_bytes = 0;
  ASSERT_EQ(embedding_backward_workspace_bytes(kTokens, kVocab, &ws_bytes), cudaSuccess);
  DeviceBuffer ws(ws_bytes);

  ASSERT_EQ(
      embedding_forward(t, d_tokens.as<int>(), wte.get(), wpe.get(), out.get(), kTokens, kSeq, kVocab, d, nullptr),
      cudaSuccess);
  ASSERT_EQ(embedding_backward(t, d_tokens.as<int>(), dout.get(), dwte.as<float>(), dwpe.as<float>(), kTokens, kSeq,
                               kVocab, d, ws.get(), ws.bytes(), nullptr),
            cudaSuccess);
  CUDA_CHECK(cudaDeviceSynchronize());

  std::vector<double> out_ref(n), dwte_ref(kVocab * d, 0.0), dwpe_ref(kSeq * d, 0.0);
  const std::vector<double> hdout = download(t, dout.get(), n);
  embedding_forward_host(tokens.data(), download(t, wte.get(), kVocab * d).data(),
                         download(t, wpe.get(), kSeq * d).data(), kTokens, kSeq, kVocab, d, out_ref.data());
  embedding_backward_host(tokens.data(), hdout.data(), kTokens, kSeq, kVocab, d, dwte_ref.data(), dwpe_ref.data());
  EXPECT_LT(relative_error(download(t, out.get(), n), out_ref), tol) << "out";
  expect_written_exactly(t, out.get(), n, "out");

  // What the backward added, against the reference's sums.
  std::vector<double> added_wte = download(DType::fp32, dwte.get(), kVocab * d);
  std::vector<double> added_wpe = download(DType::fp32, dwpe.get(), kSeq * d);
  std::vector<bool> present(kVocab, false);
  for (int id : tokens) {
    if (id >= 0 && static_cast<std::size_t>(id) < kVocab) present[static_cast<std::size_t>(id)] = true;
  }
  for (std::size_t v = 0; v < kVocab; ++v) {
    if (present[v]) continue;
    for (std::size_t c = 0; c < d; ++c) ASSERT_EQ(added_wte[v * d + c], dwte0[v * d + c]) << "absent token " << v;
  }
  for (std::size_t i = 0; i < added_wte.size(); ++i) added_wte[i] -= dwte0[i];
  for (std::size_t i = 0; i < added_wpe.size(); ++i) added_wpe[i] -= dwpe0[i];
  EXPECT_LT(relative_error(added_wte, dwte_ref), 1e-5) << "dwte";
  EXPECT_LT(relative_error(added_wpe, dwpe_ref), 1e-5) << "dwpe";
}

INSTANTIATE_TEST_SUITE_P(Widths, EmbeddingKernelTest,
                         ::testing::Values(Case{DType::bf16, 768}, Case{DType::bf16, 1600}, Case{DType::fp16, 1600},
                                           Case{DType::bf16, 1003}, Case{DType::fp32, 768}),
                         case_name);

TEST(EmbeddingKernel, BackwardIsDeterministicAndPositionsOptional) {
  WFLOPS_REQUIRE_GPU();
  const DType t = DType::bf16;
  const std::size_t d = 768, n = kTokens * d;
  DeviceBuffer d_tokens = upload_ints(random_tokens(fresh_seed()));
  DeviceBuffer wte = random_buffer(t, kVocab * d), dout = random_buffer(t, n), out = poisoned(t, n);
  DeviceBuffer g1(kVocab * d * 4), g2(kVocab * d * 4);
  CUDA_CHECK(cudaMemset(g1.get(), 0, g1.bytes()));
  CUDA_CHECK(cudaMemset(g2.get(), 0, g2.bytes()));
  std::size_t ws_bytes = 0;
  ASSERT_EQ(embedding_backward_workspace_bytes(kTokens, kVocab, &ws_bytes), cudaSuccess);
  DeviceBuffer ws(ws_bytes);
  ASSERT_EQ(embedding_backward(t, d_tokens.as<int>(), dout.get(), g1.as<float>(), nullptr, kTokens, kSeq, kVocab, d,
                               ws.get(), ws.bytes(), nullptr),
            cudaSuccess);
  ASSERT_EQ(embedding_backward(t, d_tokens.as<int>(), dout.get(), g2.as<float>(), nullptr, kTokens, kSeq, kVocab, d,
                               ws.get(), ws.bytes(), nullptr),
            cudaSuccess);
  // Without a position table the output is the gathered token rows exactly.
  ASSERT_EQ(embedding_forward(t, d_tokens.as<int>(), wte.get(), nullptr, out.get(), kTokens, kSeq, kVocab, d, nullptr),
            cudaSuccess);
  CUDA_CHECK(cudaDeviceSynchronize());
  expect_same_bits(g1, g2, g1.bytes());
  std::vector<int> tokens(kTokens);
  CUDA_CHECK(cudaMemcpy(tokens.data(), d_tokens.get(), kTokens * sizeof(int), cudaMemcpyDeviceToHost));
  const std::vector<double> rows = download(t, wte.get(), kVocab * d), got = download(t, out.get(), n);
  for (std::size_t i = 0; i < kTokens; ++i) {
    const bool valid = tokens[i] >= 0 && static_cast<std::size_t>(tokens[i]) < kVocab;
    for (std::size_t c = 0; c < d; ++c) {
      ASSERT_EQ(got[i * d + c], valid ? rows[static_cast<std::size_t>(tokens[i]) * d + c] : 0.0) << i << " " << c;
    }
  }
}

TEST(EmbeddingKernel, RefusesBadArguments) {
  WFLOPS_REQUIRE_GPU();
  DeviceBuffer a(1 << 16), b(1 << 16), ws(1 << 16);
  const int* tok = a.as<int>();
  std::size_t bytes = 0;
  EXPECT_EQ(embedding_forward(DType::bf16, tok, a.get(), nullptr, b.get(), 10, 4, 100, 64, nullptr),
            cudaErrorInvalidValue);  // 10 tokens are not whole sequences of 4
  EXPECT_EQ(embedding_forward(DType::fp8_e4m3, tok, a.get(), nullptr, b.get(), 8, 4, 100, 64, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(embedding_backward_workspace_bytes(0, 100, &bytes), cudaErrorInvalidValue);
  EXPECT_EQ(embedding_backward(DType::bf16, tok, a.get(), b.as<float>(), nullptr, 8, 4, 100, 64, ws.get(), 1, nullptr),
            cudaErrorInvalidValue);  // workspace too small
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace wflops::kernels
