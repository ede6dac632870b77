#include "cuda/device_info.hpp"

#include <dlfcn.h>
#include <fmt/core.h>

#include "cuda/cuda_check.hpp"
#include "cuda/nvml.hpp"

namespace wflops {

std::string gpu_unavailable_reason() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    // The runtime reports a missing driver as an insufficient one; say which it is, so a machine
    // without a GPU is not told to upgrade a driver it does not have.
    if (e == cudaErrorInsufficientDriver) {
      void* libcuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
      if (!libcuda) return "no NVIDIA driver found (cudaErrorInsufficientDriver: libcuda.so.1 cannot be loaded)";
      dlclose(libcuda);
    }
    return cuda_error_text(e);
  }
  if (count == 0) return "no CUDA-capable GPU is visible (cudaGetDeviceCount returned 0)";
  return "";
}

namespace {

std::string cuda_version_text(int v) { return fmt::format("{}.{}", v / 1000, (v % 1000) / 10); }

// cuDNN is optional: loaded at run time for its version only.
std::string cudnn_version() {
  void* lib = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return "";
  using Fn = std::size_t (*)();
  auto fn = reinterpret_cast<Fn>(dlsym(lib, "cudnnGetVersion"));
  if (!fn) return "";
  const std::size_t v = fn();  // 9.13.0 is 91300
  return fmt::format("{}.{}.{}", v / 10000, (v % 10000) / 100, v % 100);
}

int attribute(cudaDeviceAttr a, int dev) {
  int v = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&v, a, dev));
  return v;
}

}  // namespace

DeviceDescription query_device(int index) {
  DeviceDescription d;
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  d.name = prop.name;
  d.index = index;
  d.sm_count = prop.multiProcessorCount;
  d.cc_major = prop.major;
  d.cc_minor = prop.minor;
  d.mem_bytes = static_cast<double>(prop.totalGlobalMem);
  d.l2_bytes = prop.l2CacheSize;
  d.mem_bus_width_bits = attribute(cudaDevAttrGlobalMemoryBusWidth, index);
  d.sm_clock_max_mhz = attribute(cudaDevAttrClockRate, index) / 1000;         // kHz -> MHz
  d.mem_clock_max_mhz = attribute(cudaDevAttrMemoryClockRate, index) / 1000;  // kHz -> MHz
  char bus[32] = {};
  CUDA_CHECK(cudaDeviceGetPCIBusId(bus, sizeof bus, index));
  d.pci_bus_id = bus;

  int runtime = 0, driver = 0;
  CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  CUDA_CHECK(cudaDriverGetVersion(&driver));
  d.cuda_runtime = cuda_version_text(runtime);
  d.cuda_driver = cuda_version_text(driver);
  int major = 0, minor = 0, patch = 0;
  CUBLAS_CHECK(cublasGetProperty(MAJOR_VERSION, &major));
  CUBLAS_CHECK(cublasGetProperty(MINOR_VERSION, &minor));
  CUBLAS_CHECK(cublasGetProperty(PATCH_LEVEL, &patch));
  d.cublas = fmt::format("{}.{}.{}", major, minor, patch);
  d.cudnn = cudnn_version();

  d.nvml = nvml::available();
  d.driver = d.nvml ? nvml::driver_version() : "";
  if (d.driver.empty()) d.driver = "CUDA " + d.cuda_driver;
  if (nvml::Device* nd = nvml::device_by_pci_bus_id(d.pci_bus_id)) {
    if (auto v = nvml::sm_clock_max_mhz(nd)) d.sm_clock_max_mhz = static_cast<int>(*v);
    if (auto v = nvml::sm_clock_mhz(nd)) d.sm_clock_mhz = static_cast<int>(*v);
    if (auto v = nvml::mem_clock_max_mhz(nd)) d.mem_clock_max_mhz = static_cast<int>(*v);
    if (auto v = nvml::mem_clock_mhz(nd)) d.mem_clock_mhz = static_cast<int>(*v);
    if (auto v = nvml::power_limit_w(nd)) d.power_limit_w = *v;
    d.energy_counter = nvml::total_energy_mj(nd).has_value();
  } else {
    d.nvml = false;
  }
  return d;
}

}  // namespace wflops
