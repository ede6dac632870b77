#include "cuda/nvml.hpp"

#include <dlfcn.h>

namespace wflops::nvml {

namespace {

using Ret = int;              // nvmlReturn_t; 0 is NVML_SUCCESS
constexpr int kClockSm = 1;   // NVML_CLOCK_SM
constexpr int kClockMem = 2;  // NVML_CLOCK_MEM

struct Api {
  bool ok = false;
  Ret (*init)() = nullptr;
  Ret (*by_pci)(const char*, Device**) = nullptr;
  Ret (*clock)(Device*, int, unsigned*) = nullptr;
  Ret (*max_clock)(Device*, int, unsigned*) = nullptr;
  Ret (*power_limit)(Device*, unsigned*) = nullptr;
  Ret (*reasons)(Device*, unsigned long long*) = nullptr;
  Ret (*driver)(char*, unsigned) = nullptr;
  Ret (*index)(Device*, unsigned*) = nullptr;
  Ret (*energy)(Device*, unsigned long long*) = nullptr;
};

template <typename F>
void load(void* lib, F& fn, const char* name) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
}

const Api& api() {
  static const Api a = [] {
    Api x;
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return x;
    load(lib, x.init, "nvmlInit_v2");
    load(lib, x.by_pci, "nvmlDeviceGetHandleByPciBusId_v2");
    load(lib, x.clock, "nvmlDeviceGetClockInfo");
    load(lib, x.max_clock, "nvmlDeviceGetMaxClockInfo");
    load(lib, x.power_limit, "nvmlDeviceGetPowerManagementLimit");
    // Renamed "clocks event reasons" in newer drivers; the old name is still exported.
    load(lib, x.reasons, "nvmlDeviceGetCurrentClocksEventReasons");
    if (!x.reasons) load(lib, x.reasons, "nvmlDeviceGetCurrentClocksThrottleReasons");
    load(lib, x.driver, "nvmlSystemGetDriverVersion");
    load(lib, x.index, "nvmlDeviceGetIndex");
    load(lib, x.energy, "nvmlDeviceGetTotalEnergyConsumption");
    x.ok = x.init && x.by_pci && x.clock && x.max_clock && x.init() == 0;
    return x;
  }();
  return a;
}

std::optional<unsigned> clock_query(Ret (*fn)(Device*, int, unsigned*), Device* d, int which) {
  unsigned v = 0;
  if (!d || !fn || fn(d, which, &v) != 0) return std::nullopt;
  return v;
}

}  // namespace

bool available() { return api().ok; }

std::string driver_version() {
  char buf[96] = {};
  if (!available() || !api().driver || api().driver(buf, sizeof buf) != 0) return "";
  return buf;
}

Device* device_by_pci_bus_id(const std::string& pci_bus_id) {
  Device* d = nullptr;
  if (!available() || api().by_pci(pci_bus_id.c_str(), &d) != 0) return nullptr;
  return d;
}

std::optional<unsigned> sm_clock_mhz(Device* d) { return clock_query(api().clock, d, kClockSm); }
std::optional<unsigned> sm_clock_max_mhz(Device* d) { return clock_query(api().max_clock, d, kClockSm); }
std::optional<unsigned> mem_clock_mhz(Device* d) { return clock_query(api().clock, d, kClockMem); }
std::optional<unsigned> mem_clock_max_mhz(Device* d) { return clock_query(api().max_clock, d, kClockMem); }

std::optional<double> power_limit_w(Device* d) {
  unsigned mw = 0;
  if (!d || !api().power_limit || api().power_limit(d, &mw) != 0) return std::nullopt;
  return mw / 1000.0;
}

std::optional<std::uint64_t> throttle_reasons(Device* d) {
  unsigned long long r = 0;
  if (!d || !api().reasons || api().reasons(d, &r) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(r);
}

std::optional<std::uint64_t> total_energy_mj(Device* d) {
  unsigned long long mj = 0;
  // Pre-Volta GPUs answer NVML_ERROR_NOT_SUPPORTED; an old driver may lack the symbol.
  if (!d || !api().energy || api().energy(d, &mj) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(mj);
}

std::optional<unsigned> index(Device* d) {
  unsigned i = 0;
  if (!d || !api().index || api().index(d, &i) != 0) return std::nullopt;
  return i;
}

}  // namespace wflops::nvml
