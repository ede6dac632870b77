#include "gpu_test_util.hpp"

#include <cstdint>
#include <vector>

#include "cuda/cuda_check.hpp"
#include "cuda/device_info.hpp"
#include "numeric_formats.hpp"

namespace wflops::testing {

namespace {
// The GPU tests run workloads' own blocked timing (autotuning) as `wflops run` does, so they load
// modules eagerly as it does; gtest_main owns main(), so this runs at static initialisation, before
// any test touches CUDA.
[[maybe_unused]] const bool kEagerModuleLoading = (prefer_eager_module_loading(), true);
}  // namespace

std::string gpu_unavailable_reason() { return wflops::gpu_unavailable_reason(); }

TestStream::TestStream() { CUDA_CHECK(cudaStreamCreate(&stream_)); }
TestStream::~TestStream() { cudaStreamDestroy(stream_); }

Verification verify_then_launch(Workload& w, cudaStream_t stream) {
  w.allocate(2, stream);
  w.tune(stream);
  const Verification v = w.verify(stream);
  w.launch(stream, 1);
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return v;
}

void expect_first_causal_row(const void* q, const void* k, const void* v, const void* o, const float* lse) {
  constexpr int kHeadDim = 64;
  constexpr std::size_t kRowBytes = kHeadDim * sizeof(std::uint16_t);
  std::vector<std::uint16_t> ho(kHeadDim), hv(kHeadDim), hq(kHeadDim), hk(kHeadDim);
  float l0 = 0;
  CUDA_CHECK(cudaMemcpy(ho.data(), o, kRowBytes, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(hv.data(), v, kRowBytes, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(hq.data(), q, kRowBytes, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(hk.data(), k, kRowBytes, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(&l0, lse, sizeof l0, cudaMemcpyDeviceToHost));
  double score = 0;
  for (int c = 0; c < kHeadDim; ++c) {
    EXPECT_NEAR(decode_bf16(ho[c]), decode_bf16(hv[c]), 1e-2) << c;  // P = [1, 0, 0, ...]
    score += decode_bf16(hq[c]) * decode_bf16(hk[c]);
  }
  EXPECT_NEAR(l0, score / 8.0, 1e-3);  // scale 1/sqrt(64)
}

}  // namespace wflops::testing
