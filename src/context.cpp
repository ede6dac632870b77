#include "context.hpp"

#include <cmath>
#include <string>
#include <utility>

#include "wflops/version.hpp"

namespace wflops {

namespace {
// Unknown numbers (no NVML, say) are null rather than a misleading 0.
nlohmann::json positive_or_null(double v) { return v > 0 ? nlohmann::json(v) : nlohmann::json(nullptr); }
nlohmann::json text_or_null(const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); }
double round_to(double v, double step) { return std::round(v / step) * step; }
}  // namespace

nlohmann::json make_context(const DeviceDescription& dev, const Peaks& peaks, const RunInfo& run) {
  nlohmann::json c;
  c["source"] = "wflops";
  c["wflops_version"] = kVersion;
  c["wflops_commit"] = kGitCommit;
  c["gpu_name"] = dev.name;
  c["gpu_slug"] = peaks.slug;
  c["gpu_index"] = dev.index;
  c["sm_count"] = dev.sm_count;
  c["cc"] = dev.cc();
  c["mem_gib"] = round_to(dev.mem_gib(), 0.01);
  c["l2_mib"] = round_to(dev.l2_bytes / (1024.0 * 1024.0), 0.01);
  // The numbers and texts that may be unknown, each key with its value: one rule makes them null.
  // peak_clock_mhz is the SM clock the peaks assume; each benchmark's clock_ratio is its median SM
  // clock over it.
  const std::pair<const char*, double> numbers[] = {
      {"sm_clock_max_mhz", dev.sm_clock_max_mhz},   {"sm_clock_mhz", dev.sm_clock_mhz},
      {"mem_clock_max_mhz", dev.mem_clock_max_mhz}, {"mem_clock_mhz", dev.mem_clock_mhz},
      {"power_limit_w", dev.power_limit_w},         {"peak_clock_mhz", peaks.peak_clock_mhz}};
  for (const auto& [key, v] : numbers) c[key] = positive_or_null(v);
  const std::pair<const char*, std::string> texts[] = {{"pci_bus_id", dev.pci_bus_id},
                                                       {"driver", dev.driver},
                                                       {"cuda_driver", dev.cuda_driver},
                                                       {"cuda_runtime", dev.cuda_runtime},
                                                       {"cublas", dev.cublas},
                                                       {"cudnn", dev.cudnn},
                                                       {"suite", run.suite},
                                                       {"peak_note", peaks.note}};
  for (const auto& [key, v] : texts) c[key] = text_or_null(v);
  c["nvml"] = dev.nvml;
  // Where the energy counter is missing the benchmarks carry no watts, joules or tflop_per_joule,
  // and the file says why rather than leaving the reader to guess.
  c["energy_counter"] = dev.energy_counter;
  if (!dev.energy_counter) {
    c["energy_note"] = dev.nvml ? "NVML has no total energy counter for this GPU (nvmlDeviceGetTotalEnergyConsumption "
                                  "needs Volta or newer): watts, joules and tflop_per_joule are left out"
                                : "NVML is not available: no clocks, power or energy counters";
  }
  c["host"] = run.host;
  c["l2_policy"] = run.l2_policy;
  c["peak_source"] = peaks.source;
  for (DType t : peak_dtypes()) {
    const auto v = peaks.peak(t);
    c["peak_tflops_" + std::string(dtype_name(t))] = v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  }
  c["peak_gbps"] = peaks.gbps;
  c["interrupted"] = true;
  return c;
}

std::vector<std::pair<std::string, std::string>> context_as_strings(const nlohmann::json& context) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto it = context.begin(); it != context.end(); ++it) {
    const auto& v = it.value();
    out.emplace_back(it.key(), v.is_string() ? v.get<std::string>() : v.dump());
  }
  return out;
}

}  // namespace wflops
