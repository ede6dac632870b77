#include "clock_assessment.hpp"

#include <algorithm>

namespace wflops {

ClockAssessment assess_clocks(std::vector<unsigned> sm_clocks_mhz, std::uint64_t reasons, double peak_clock_mhz) {
  ClockAssessment a;
  a.reasons = reasons;
  a.power_capped = (reasons & clock_reason::kSwPowerCap) != 0;
  a.thermal_or_hardware = (reasons & clock_reason::kThermalOrHardware) != 0;
  if (!sm_clocks_mhz.empty()) {
    // The median, not the minimum: one reading taken as a batch ramps up (or as the power
    // controller steps the clock for a moment) says little about the clock the batches ran at.
    std::sort(sm_clocks_mhz.begin(), sm_clocks_mhz.end());
    const std::size_t n = sm_clocks_mhz.size();
    const double upper = sm_clocks_mhz[n / 2];
    a.median_sm_clock_mhz = n % 2 == 1 ? upper : 0.5 * (sm_clocks_mhz[n / 2 - 1] + upper);
    if (peak_clock_mhz > 0) a.clock_ratio = *a.median_sm_clock_mhz / peak_clock_mhz;
  }
  a.throttled = a.thermal_or_hardware || (a.clock_ratio && *a.clock_ratio < kThrottledClockRatio);
  return a;
}

std::optional<EnergyAssessment> assess_energy(const std::vector<EnergySample>& samples, double flops_per_iteration) {
  // Readings at which the counter had just been updated.
  std::optional<std::size_t> first, last;
  for (std::size_t k = 1; k < samples.size(); ++k) {
    if (samples[k].energy_mj < samples[k - 1].energy_mj) return std::nullopt;  // reset: no figure
    if (samples[k].energy_mj == samples[k - 1].energy_mj) continue;
    if (!first) first = k;
    last = k;
  }
  if (!first || *last == *first) return std::nullopt;
  const EnergySample& a = samples[*first];
  const EnergySample& b = samples[*last];
  const double seconds = b.host_seconds - a.host_seconds;
  // Reading k is taken while batch k runs, so from reading a to reading b the GPU ran the rest of
  // batch a, batches a+1 .. b-1 and the start of batch b: about the work of batches a+1 .. b.
  const long launches = b.launches_done - a.launches_done;
  if (!(seconds > 0) || launches <= 0) return std::nullopt;
  const double joules = static_cast<double>(b.energy_mj - a.energy_mj) / 1e3;
  EnergyAssessment e;
  e.span_seconds = seconds;
  e.watts = joules / seconds;
  e.joules = joules / static_cast<double>(launches);
  e.tflop_per_joule = flops_per_iteration > 0 ? flops_per_iteration / e.joules / 1e12 : 0;
  return e;
}

}  // namespace wflops
