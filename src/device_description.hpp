// What wflops records about a GPU. Filled from the CUDA runtime and NVML by cuda/device_info.cpp;
// a plain struct so that peaks, context formatting and tests work without a GPU.
#pragma once
#include <string>

namespace wflops {

struct DeviceDescription {
  std::string name;  // "NVIDIA H100 80GB HBM3"
  int index = 0;     // CUDA device ordinal (after CUDA_VISIBLE_DEVICES)
  int sm_count = 0;
  int cc_major = 0;
  int cc_minor = 0;
  double mem_bytes = 0;
  double l2_bytes = 0;
  int mem_bus_width_bits = 0;
  int sm_clock_max_mhz = 0;  // 0: unknown
  int sm_clock_mhz = 0;      // current (NVML), 0: unknown
  int mem_clock_max_mhz = 0;
  int mem_clock_mhz = 0;
  double power_limit_w = 0;  // 0: unknown (no NVML)
  std::string pci_bus_id;
  std::string driver;           // NVML's driver version ("580.65.06") or the CUDA driver API level
  std::string cuda_driver;      // CUDA version the driver supports, "13.0"
  std::string cuda_runtime;     // "13.0"
  std::string cublas;           // "13.0.0"
  std::string cudnn;            // "9.13.0" or "" when libcudnn is absent
  bool nvml = false;            // NVML was loaded: clocks, power and throttle reasons are real
  bool energy_counter = false;  // NVML's total energy counter answers (watts, joules counters)

  double mem_gib() const { return mem_bytes / (1024.0 * 1024.0 * 1024.0); }
  std::string cc() const { return std::to_string(cc_major) + "." + std::to_string(cc_minor); }
};

}  // namespace wflops
