#include "gpu_test_util.hpp"

#include "cuda/device_info.hpp"

namespace wflops::testing {
std::string gpu_unavailable_reason() { return wflops::gpu_unavailable_reason(); }
}  // namespace wflops::testing
