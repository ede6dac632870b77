// The harness's timing helpers on a real GPU: counting a launch's stream operations by capture
// (nothing may run, a failed capture must leave the stream usable and no error behind), and the
// blocked timer (it must release the stream when an enqueue throws, not wait for the timeout).
// Skipped with a reason where there is no GPU.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>

#include "common/fill_random.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "gpu_test_util.hpp"

namespace wflops {

namespace {

std::uint8_t first_byte(const DeviceBuffer& b, cudaStream_t stream) {
  std::uint8_t v = 0;
  CUDA_CHECK(cudaMemcpyAsync(&v, b.get(), 1, cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return v;
}

}  // namespace

TEST(CountStreamOps, CountsWhatALaunchEnqueuesAndRunsNothing) {
  WFLOPS_REQUIRE_GPU();
  testing::TestStream s;
  DeviceBuffer buf(1 << 20);
  CUDA_CHECK(cudaMemsetAsync(buf.get(), 0, buf.bytes(), s.get()));
  CUDA_CHECK(cudaStreamSynchronize(s.get()));
  const long ops = count_stream_ops(s.get(), [&] {
    CUDA_CHECK(cudaMemsetAsync(buf.get(), 0xAB, buf.bytes(), s.get()));
    CUDA_CHECK(cudaMemsetAsync(buf.get(), 0xCD, 16, s.get()));
    CUDA_CHECK(kernels::fill_random(DType::fp32, buf.get(), 1024, 7, s.get()));
  });
  EXPECT_EQ(ops, 3) << "two memsets and one kernel";
  EXPECT_EQ(first_byte(buf, s.get()), 0u) << "a captured operation must not run";
  cudaStreamCaptureStatus status{};
  CUDA_CHECK(cudaStreamIsCapturing(s.get(), &status));
  EXPECT_EQ(status, cudaStreamCaptureStatusNone);
}

TEST(CountStreamOps, ALaunchThatSynchronisesIsNotCountedAndLeavesTheStreamUsable) {
  WFLOPS_REQUIRE_GPU();
  testing::TestStream s;
  DeviceBuffer buf(4096);
  const long ops = count_stream_ops(s.get(), [&] {
    CUDA_CHECK(cudaMemsetAsync(buf.get(), 0x11, buf.bytes(), s.get()));
    CUDA_CHECK(cudaStreamSynchronize(s.get()));  // not allowed while capturing: throws
  });
  EXPECT_EQ(ops, 0);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "the capture's error must not linger";
  cudaStreamCaptureStatus status{};
  CUDA_CHECK(cudaStreamIsCapturing(s.get(), &status));
  EXPECT_EQ(status, cudaStreamCaptureStatusNone);
  // The stream runs work again.
  CUDA_CHECK(cudaMemsetAsync(buf.get(), 0x22, buf.bytes(), s.get()));
  EXPECT_EQ(first_byte(buf, s.get()), 0x22u);
}

TEST(BlockedTimer, TimesABatchBehindTheBlockAndReleasesItWhenAnEnqueueThrows) {
  WFLOPS_REQUIRE_GPU();
  testing::TestStream s;
  DeviceBuffer buf(64 << 20);
  BlockedTimer timer(s.get());
  const auto fill = [&](long i) {
    CUDA_CHECK(kernels::fill_random(DType::fp32, buf.get(), buf.bytes() / 4, static_cast<std::uint64_t>(i), s.get()));
  };
  const double blocked = timer.time(20, true, fill);
  const double unblocked = timer.time(20, false, fill);
  EXPECT_GT(blocked, 0);
  EXPECT_GT(unblocked, 0);
  EXPECT_LT(blocked, 1.0) << "20 fills of 64 MiB take milliseconds";
  // An enqueue that throws halfway: the stream is released at once, not after the 5 s timeout.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(timer.time(10, true,
                          [&](long i) {
                            if (i == 5) throw std::runtime_error("enqueue failed");
                            fill(i);
                          }),
               std::runtime_error);
  CUDA_CHECK(cudaStreamSynchronize(s.get()));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
  EXPECT_GT(timer.time(1, true, fill), 0) << "the timer works after a failed batch";
}

}  // namespace wflops
