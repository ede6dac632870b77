// MoE routing kernels at their edges: the top-k kernel at the largest expert count its shared
// memory allows without the opt-in (the launch must succeed, and the choice match the host
// reference). Skipped with a reason where there is no GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "gpu_test_util.hpp"
#include "moe_reference.hpp"
#include "moe_topk.cuh"

namespace wflops {

namespace {

TEST(MoeTopK, RunsAtTheSharedMemoryLimit) {
  WFLOPS_REQUIRE_GPU();
  testing::TestStream stream;
  const int experts = kernels::moe_top_k_max_experts(), tokens = 3, k = 4;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> probs(static_cast<std::size_t>(tokens) * experts);
  for (float& p : probs) p = u(rng);
  DeviceBuffer d_probs(probs.size() * sizeof(float)), d_expert(tokens * k * sizeof(int)),
      d_score(tokens * k * sizeof(float));
  CUDA_CHECK(cudaMemcpy(d_probs.get(), probs.data(), d_probs.bytes(), cudaMemcpyHostToDevice));
  // Static and dynamic shared memory together exactly fit 48 KiB: the launch must be accepted.
  CUDA_CHECK(kernels::moe_top_k(d_probs.as<float>(), tokens, experts, k, d_expert.as<int>(), d_score.as<float>(),
                                stream.get()));
  CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  std::vector<int> got(static_cast<std::size_t>(tokens) * k);
  CUDA_CHECK(cudaMemcpy(got.data(), d_expert.get(), d_expert.bytes(), cudaMemcpyDeviceToHost));
  for (int t = 0; t < tokens; ++t) {
    const std::vector<double> p(probs.begin() + static_cast<long>(t) * experts,
                                probs.begin() + static_cast<long>(t + 1) * experts);
    const std::vector<long> want = moe::top_k_experts(p.data(), experts, k);
    for (int j = 0; j < k; ++j) EXPECT_EQ(got[static_cast<std::size_t>(t * k + j)], want[j]) << t << " " << j;
  }
  // One more expert is refused before any launch.
  EXPECT_EQ(kernels::moe_top_k(d_probs.as<float>(), 1, experts + 1, k, d_expert.as<int>(), d_score.as<float>(),
                               stream.get()),
            cudaErrorInvalidValue);
}

}  // namespace

}  // namespace wflops
