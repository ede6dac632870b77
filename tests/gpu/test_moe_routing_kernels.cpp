// Two MoE routing kernels at their edges: the grouped GEMM's pointer arrays built on the device from
// the experts' counts (every entry against the host's grouping, with experts of no token, ties and
// more experts than one block holds), and the top-k kernel at the largest expert count its shared
// memory allows without the opt-in (the launch must succeed, and the choice match the host
// reference). Skipped with a reason where there is no GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/moe_expert_gemm.hpp"
#include "gpu_test_util.hpp"
#include "moe/moe_grouped_pointers.cuh"
#include "moe/moe_topk.cuh"
#include "reference/moe_reference.hpp"

namespace wflops {

namespace {

TEST(MoeGroupedPointers, DeviceArraysMatchTheHostGrouping) {
  WFLOPS_REQUIRE_GPU();
  testing::TestStream stream;
  std::mt19937 rng(11);
  for (int experts : {1, 8, 300, 4096}) {
    SCOPED_TRACE(experts);
    std::vector<int> counts(static_cast<std::size_t>(experts));
    std::uniform_int_distribution<int> pick(0, 5);  // zeros and many ties
    for (int& c : counts) c = pick(rng);
    counts[0] = 0;
    // Two operands: weights (expert e at e * 96 bytes) and token rows (offset_e * 10 bytes).
    kernels::GroupedPointerSpec spec;
    char* const weights = reinterpret_cast<char*>(std::uintptr_t{0x100000});
    char* const rows = reinterpret_cast<char*>(std::uintptr_t{0x900000});
    spec.operand[0] = {weights, 96, 0, 0};
    spec.operand[1] = {rows, 0, 10, 1};
    spec.operands = 2;
    DeviceBuffer d_counts(counts.size() * sizeof(int));
    CUDA_CHECK(cudaMemcpy(d_counts.get(), counts.data(), counts.size() * sizeof(int), cudaMemcpyHostToDevice));
    DeviceBuffer out(2 * counts.size() * sizeof(void*));
    CUDA_CHECK(cudaMemset(out.get(), 0xFF, out.bytes()));
    CUDA_CHECK(kernels::moe_grouped_pointers(d_counts.as<int>(), experts, spec, out.as<void*>(), stream.get()));
    CUDA_CHECK(cudaStreamSynchronize(stream.get()));
    std::vector<char*> got(2 * counts.size());
    CUDA_CHECK(cudaMemcpy(got.data(), out.get(), out.bytes(), cudaMemcpyDeviceToHost));
    std::vector<long> offsets = {0};
    for (int c : counts) offsets.push_back(offsets.back() + c);
    const std::vector<int> order = grouped_expert_order(counts);
    char* const untouched = reinterpret_cast<char*>(~std::uintptr_t{0});
    for (std::size_t p = 0; p < counts.size(); ++p) {
      if (p < order.size()) {
        const int e = order[p];
        EXPECT_EQ(got[p], weights + 96L * e) << "position " << p;
        EXPECT_EQ(got[counts.size() + p], rows + 10L * offsets[static_cast<std::size_t>(e)]) << "position " << p;
      } else {  // past the last expert with a token: left as it was
        EXPECT_EQ(got[p], untouched) << "position " << p;
        EXPECT_EQ(got[counts.size() + p], untouched) << "position " << p;
      }
    }
  }
}

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
  EXPECT_EQ(
      kernels::moe_top_k(d_probs.as<float>(), 1, experts + 1, k, d_expert.as<int>(), d_score.as<float>(), stream.get()),
      cudaErrorInvalidValue);
}

}  // namespace

}  // namespace wflops
