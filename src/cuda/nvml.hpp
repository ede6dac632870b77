// NVML, loaded at run time with dlopen("libnvidia-ml.so.1"): never linked, because machines
// without a GPU driver have no NVML and the test binaries must still start there. Everything
// degrades to "unknown" when it is absent.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace wflops::nvml {

struct Device;  // opaque NVML handle

bool available();              // libnvidia-ml loaded and initialised
std::string driver_version();  // "" when unknown

// The NVML device of a CUDA device, matched by PCI bus id (right under CUDA_VISIBLE_DEVICES).
Device* device_by_pci_bus_id(const std::string& pci_bus_id);

std::optional<unsigned> sm_clock_mhz(Device* d);
std::optional<unsigned> sm_clock_max_mhz(Device* d);
std::optional<unsigned> mem_clock_mhz(Device* d);
std::optional<unsigned> mem_clock_max_mhz(Device* d);
std::optional<double> power_limit_w(Device* d);
// The "clocks event" (throttle) reasons in force now; the bits are in clock_assessment.hpp.
std::optional<std::uint64_t> throttle_reasons(Device* d);
// NVML's total energy counter: millijoules since the driver was loaded (NVML API reference,
// nvmlDeviceGetTotalEnergyConsumption: Volta and newer). nullopt where the GPU or driver lacks it.
std::optional<std::uint64_t> total_energy_mj(Device* d);
std::optional<unsigned> index(Device* d);

}  // namespace wflops::nvml
