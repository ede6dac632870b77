// What the clocks, throttle reasons and energy counter sampled while a benchmark was timed say
// about its result. Pure functions (no NVML, no GPU), so that the classification is tested on the
// CPU; the harness samples NVML and passes the samples in.
//
// A large GEMM on an H100 runs into the software power cap almost all the time, and its SM clock
// then sits below the 1980 MHz boost by design: that is how the datasheet peak is reached (it
// assumes ~1830 MHz), not a fault. So three things are kept apart:
//  - power_capped: the SW power cap reason was active in some batch (normal for big GEMMs);
//  - clock_ratio: the median SM clock over the timed batches / the clock the peak assumes
//    (Peaks::peak_clock_mhz), which says how far the clock, whatever the reason, explains a
//    shortfall against the peak;
//  - throttled: a thermal or hardware slowdown was active, or the clock ratio is under 0.9.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

namespace wflops {

// NVML's clocks event ("throttle") reason bits (NVML API reference, nvmlClocksEventReasons; the
// same values as the older nvmlClocksThrottleReason* names).
namespace clock_reason {
inline constexpr std::uint64_t kGpuIdle = 0x1;
inline constexpr std::uint64_t kApplicationsClocksSetting = 0x2;
inline constexpr std::uint64_t kSwPowerCap = 0x4;
inline constexpr std::uint64_t kHwSlowdown = 0x8;
inline constexpr std::uint64_t kSyncBoost = 0x10;
inline constexpr std::uint64_t kSwThermalSlowdown = 0x20;
inline constexpr std::uint64_t kHwThermalSlowdown = 0x40;
inline constexpr std::uint64_t kHwPowerBrakeSlowdown = 0x80;
inline constexpr std::uint64_t kDisplayClockSetting = 0x100;
// Slowdowns that mean the GPU protected itself from heat or from its power supply: a result
// measured under one of them is not what the GPU does in a healthy node.
inline constexpr std::uint64_t kThermalOrHardware =
    kHwSlowdown | kSwThermalSlowdown | kHwThermalSlowdown | kHwPowerBrakeSlowdown;
}  // namespace clock_reason

// Under this clock ratio a result is marked throttled whatever NVML's reasons say.
inline constexpr double kThrottledClockRatio = 0.9;

struct ClockAssessment {
  std::optional<double> median_sm_clock_mhz;  // absent without samples
  std::optional<double> clock_ratio;          // absent without samples or without a peak clock
  std::uint64_t reasons = 0;                  // the reasons of every sample, or-ed
  bool power_capped = false;                  // kSwPowerCap in some sample
  bool thermal_or_hardware = false;           // a reason of kThermalOrHardware in some sample
  bool throttled = false;                     // thermal_or_hardware, or clock_ratio < 0.9
};

// `sm_clocks_mhz`: one SM clock reading per timed batch; `reasons`: the or of the batches'
// reasons; `peak_clock_mhz`: the clock the peaks assume (0: unknown, no ratio).
ClockAssessment assess_clocks(std::vector<unsigned> sm_clocks_mhz, std::uint64_t reasons, double peak_clock_mhz);

// One reading of NVML's total energy counter, taken while a timed batch ran.
struct EnergySample {
  double host_seconds = 0;      // steady clock at the reading
  std::uint64_t energy_mj = 0;  // the counter, millijoules since the driver loaded
  long launches_done = 0;       // timed launches enqueued up to and including this batch
};

struct EnergyAssessment {
  double watts = 0;            // mean board power over the span measured
  double joules = 0;           // energy per iteration (launch) over that span
  double tflop_per_joule = 0;  // flops per iteration / joules / 1e12; 0 when flops is 0
  double span_seconds = 0;     // host time the figures cover
};

// The counter does not advance continuously: the driver updates it every 20-100 ms on recent
// GPUs (PETSc's manual, PetscLogGpuEnergyMeter, on nvmlDeviceGetTotalEnergyConsumption), so the
// difference of two readings around a short span is off by up to one update period. The span
// used is therefore from the first to the last reading at which the counter had just changed
// (an update instant, known to within one batch), and the launches are those of the batches in
// between. Needs two changes in the samples; nullopt otherwise (too short to measure, or the
// counter went backwards). The gaps between batches (the host enqueueing the next batch) are
// part of the span, so joules is the board's energy per iteration as the harness runs it.
std::optional<EnergyAssessment> assess_energy(const std::vector<EnergySample>& samples, double flops_per_iteration);

}  // namespace wflops
