#include "gpu_test_util.hpp"

#include "cuda/cuda_check.hpp"
#include "cuda/device_info.hpp"

namespace wflops::testing {

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

}  // namespace wflops::testing
