#include "context.hpp"

#include <cmath>

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
  c["pci_bus_id"] = text_or_null(dev.pci_bus_id);
  c["sm_count"] = dev.sm_count;
  c["cc"] = dev.cc();
  c["mem_gib"] = round_to(dev.mem_gib(), 0.01);
  c["l2_mib"] = round_to(dev.l2_bytes / (1024.0 * 1024.0), 0.01);
  c["sm_clock_max_mhz"] = positive_or_null(dev.sm_clock_max_mhz);
  c["sm_clock_mhz"] = positive_or_null(dev.sm_clock_mhz);
  c["mem_clock_max_mhz"] = positive_or_null(dev.mem_clock_max_mhz);
  c["mem_clock_mhz"] = positive_or_null(dev.mem_clock_mhz);
  c["power_limit_w"] = positive_or_null(dev.power_limit_w);
  c["nvml"] = dev.nvml;
  // Where the energy counter is missing the benchmarks carry no watts, joules or tflop_per_joule,
  // and the file says why rather than leaving the reader to guess.
  c["energy_counter"] = dev.energy_counter;
  if (!dev.energy_counter) {
    c["energy_note"] = dev.nvml ? "NVML has no total energy counter for this GPU (nvmlDeviceGetTotalEnergyConsumption "
                                  "needs Volta or newer): watts, joules and tflop_per_joule are left out"
                                : "NVML is not available: no clocks, power or energy counters";
  }
  c["driver"] = text_or_null(dev.driver);
  c["cuda_driver"] = text_or_null(dev.cuda_driver);
  c["cuda_runtime"] = text_or_null(dev.cuda_runtime);
  c["cublas"] = text_or_null(dev.cublas);
  c["cudnn"] = text_or_null(dev.cudnn);
  c["host"] = run.host;
  c["suite"] = text_or_null(run.suite);
  c["l2_policy"] = run.l2_policy;
  c["peak_source"] = peaks.source;
  c["peak_note"] = text_or_null(peaks.note);
  // The SM clock the peaks assume; each benchmark's clock_ratio is its median SM clock over this.
  c["peak_clock_mhz"] = positive_or_null(peaks.peak_clock_mhz);
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
