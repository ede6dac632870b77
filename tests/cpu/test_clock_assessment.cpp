// Clocks, power and energy on hand-checked samples: the median SM clock and its ratio to the
// clock the peak assumes, which reasons count as throttling (the power cap does not), the energy
// span between counter updates, and how the context and the run table show them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "clock_assessment.hpp"
#include "context.hpp"
#include "model/peaks.hpp"
#include "results/result_reporter.hpp"
#include "test_support.hpp"

namespace wflops {

namespace {

constexpr double kH100Clock = 1830;  // the clock H100 SXM's 989 TFLOP/s assume

// Samples 10 ms apart, 10 launches per batch.
std::vector<EnergySample> energy_series(const std::vector<std::uint64_t>& mj) {
  std::vector<EnergySample> out;
  for (std::size_t k = 0; k < mj.size(); ++k) {
    out.push_back({0.01 * static_cast<double>(k), mj[k], 10 * static_cast<long>(k + 1)});
  }
  return out;
}

}  // namespace

TEST(ClockAssessment, PowerCappedGemmIsNotThrottled) {
  // A big bf16 GEMM on an H100: the power cap holds the clock near 1755 MHz in every batch.
  const ClockAssessment a = assess_clocks({1755, 1740, 1770, 1755, 1650}, clock_reason::kSwPowerCap, kH100Clock);
  ASSERT_TRUE(a.median_sm_clock_mhz);
  EXPECT_DOUBLE_EQ(*a.median_sm_clock_mhz, 1755);  // sorted: 1650 1740 1755 1755 1770
  ASSERT_TRUE(a.clock_ratio);
  EXPECT_NEAR(*a.clock_ratio, 0.959016, 1e-6);  // 1755 / 1830
  EXPECT_TRUE(a.power_capped);
  EXPECT_FALSE(a.thermal_or_hardware);
  EXPECT_FALSE(a.throttled) << "the power cap is how an H100 reaches its peak, not a fault";
  EXPECT_EQ(a.reasons, 0x4u);
}

TEST(ClockAssessment, MedianOfAnEvenCountAndOneLowReading) {
  // A100: (1395 + 1410) / 2 = 1402.5 over 1410.
  const ClockAssessment a = assess_clocks({1410, 1395, 1200, 1410}, 0, 1410);
  EXPECT_DOUBLE_EQ(*a.median_sm_clock_mhz, 1402.5);
  EXPECT_NEAR(*a.clock_ratio, 1402.5 / 1410, 1e-12);
  EXPECT_FALSE(a.throttled) << "one reading at 1200 MHz (0.85) does not stand for the run";
  EXPECT_FALSE(a.power_capped);
  // Three readings, one low: the median is 1755.
  EXPECT_FALSE(assess_clocks({1755, 1200, 1755}, 0, kH100Clock).throttled);
}

TEST(ClockAssessment, ThermalAndHardwareSlowdownsThrottle) {
  for (std::uint64_t r : {clock_reason::kHwSlowdown, clock_reason::kSwThermalSlowdown, clock_reason::kHwThermalSlowdown,
                          clock_reason::kHwPowerBrakeSlowdown}) {
    const ClockAssessment a = assess_clocks({1830, 1830}, r | clock_reason::kSwPowerCap, kH100Clock);
    EXPECT_TRUE(a.thermal_or_hardware) << r;
    EXPECT_TRUE(a.throttled) << r << ": throttled even with the clock at 1.0";
    EXPECT_DOUBLE_EQ(*a.clock_ratio, 1.0);
  }
  for (std::uint64_t r : {clock_reason::kGpuIdle, clock_reason::kApplicationsClocksSetting, clock_reason::kSyncBoost,
                          clock_reason::kDisplayClockSetting, clock_reason::kSwPowerCap}) {
    EXPECT_FALSE(assess_clocks({1830}, r, kH100Clock).throttled) << r;
  }
  // NVML's values: HW slowdown 0x8, SW thermal 0x20, HW thermal 0x40, HW power brake 0x80.
  EXPECT_EQ(clock_reason::kThermalOrHardware, 0xE8u);
}

TEST(ClockAssessment, ALowClockThrottlesWithoutAReason) {
  // 1600 / 1830 = 0.874: more than 10% under the clock the peak assumes.
  const ClockAssessment a = assess_clocks({1600, 1590, 1610}, clock_reason::kSwPowerCap, kH100Clock);
  EXPECT_NEAR(*a.clock_ratio, 0.874317, 1e-6);
  EXPECT_FALSE(a.thermal_or_hardware);
  EXPECT_TRUE(a.throttled);
  // The bound: 900 / 1000 is 0.9, not under it; 899 is.
  EXPECT_FALSE(assess_clocks({900}, 0, 1000).throttled);
  EXPECT_TRUE(assess_clocks({899}, 0, 1000).throttled);
}

TEST(ClockAssessment, MissingSamplesOrPeakClock) {
  const ClockAssessment none = assess_clocks({}, clock_reason::kSwPowerCap, kH100Clock);
  EXPECT_FALSE(none.median_sm_clock_mhz);
  EXPECT_FALSE(none.clock_ratio);
  EXPECT_TRUE(none.power_capped);
  EXPECT_FALSE(none.throttled);
  // No clock to read against (a derived peak without a max clock): a median but no ratio.
  const ClockAssessment unknown = assess_clocks({1500, 1500, 1500}, 0, 0);
  EXPECT_DOUBLE_EQ(*unknown.median_sm_clock_mhz, 1500);
  EXPECT_FALSE(unknown.clock_ratio);
  EXPECT_FALSE(unknown.throttled);
}

TEST(EnergyAssessment, SpanBetweenCounterUpdates) {
  // The counter moves at readings 3, 6 and 9 (every 30 ms). Span: readings 3 to 9, 0.06 s,
  // 2800 - 1600 = 1200 mJ: 20 W. Launches: 100 - 40 = 60 (batches 4 to 9), 1.2 J / 60 = 0.02 J.
  const auto e = assess_energy(energy_series({1000, 1000, 1000, 1600, 1600, 1600, 2200, 2200, 2200, 2800}), 1e10);
  ASSERT_TRUE(e);
  EXPECT_NEAR(e->span_seconds, 0.06, 1e-12);
  EXPECT_NEAR(e->watts, 20.0, 1e-9);
  EXPECT_NEAR(e->joules, 0.02, 1e-12);
  EXPECT_NEAR(e->tflop_per_joule, 0.5, 1e-9);  // 1e10 FLOP / 0.02 J = 5e11 FLOP/J
  // Readings after the last update add nothing: the span still ends at reading 9.
  const auto longer =
      assess_energy(energy_series({1000, 1000, 1000, 1600, 1600, 1600, 2200, 2200, 2200, 2800, 2800, 2800}), 1e10);
  ASSERT_TRUE(longer);
  EXPECT_NEAR(longer->watts, 20.0, 1e-9);
}

TEST(EnergyAssessment, CounterThatMovesEveryReading) {
  // 700 W at 10 ms per reading is 7000 mJ a reading; readings 1 to 3 span 20 ms and 20 launches.
  const auto e = assess_energy(energy_series({0, 7000, 14000, 21000}), 2e9);
  ASSERT_TRUE(e);
  EXPECT_NEAR(e->watts, 700.0, 1e-6);
  EXPECT_NEAR(e->joules, 0.7, 1e-9);  // 14 J / 20 launches
  EXPECT_NEAR(e->tflop_per_joule, 2e9 / 0.7 / 1e12, 1e-12);
}

TEST(EnergyAssessment, TooShortOrBrokenGivesNothing) {
  EXPECT_FALSE(assess_energy({}, 1e9));
  EXPECT_FALSE(assess_energy(energy_series({500, 500, 500}), 1e9)) << "the counter never moved";
  EXPECT_FALSE(assess_energy(energy_series({500, 500, 900, 900}), 1e9)) << "one update: no span between two";
  EXPECT_FALSE(assess_energy(energy_series({500, 900, 100, 600}), 1e9)) << "the counter went backwards";
  // A memory-bound benchmark counts no FLOPs: power and energy, no TFLOP per joule.
  const auto copy = assess_energy(energy_series({0, 7000, 14000}), 0);
  ASSERT_TRUE(copy);
  EXPECT_NEAR(copy->watts, 700.0, 1e-6);
  EXPECT_EQ(copy->tflop_per_joule, 0);
}

TEST(ClockContext, PeakClockAndEnergyCounterInTheContext) {
  DeviceDescription d = testing::h100_device();  // boost clock 1980 MHz
  d.energy_counter = true;
  const RunInfo run{"h", "quick", "p"};
  nlohmann::json c = make_context(d, peaks_for_device(d), run);
  EXPECT_EQ(c["peak_clock_mhz"], 1830) << "the table's clock, not the 1980 MHz boost";
  EXPECT_EQ(c["energy_counter"], true);
  EXPECT_FALSE(c.contains("energy_note"));
  d.energy_counter = false;
  c = make_context(d, peaks_for_device(d), run);
  EXPECT_EQ(c["energy_counter"], false);
  EXPECT_NE(c["energy_note"].get<std::string>().find("nvmlDeviceGetTotalEnergyConsumption"), std::string::npos);
  // A GPU outside the table: its derived peaks assume the max SM clock, and so does the ratio.
  d.name = "NVIDIA Future GPU";
  d.sm_clock_max_mhz = 2100;
  c = make_context(d, peaks_for_device(d), run);
  EXPECT_EQ(c["peak_source"], "derived");
  EXPECT_EQ(c["peak_clock_mhz"], 2100);
}

namespace {
benchmark::BenchmarkReporter::Run clocked_run(const std::string& name, double ratio, double throttled, double reasons) {
  auto r = testing::timed_run(name, 700, 100, 0.035);
  r.counters["clock_ratio"] = ratio;
  r.counters["throttled"] = throttled;
  r.counters["throttle_reasons"] = reasons;
  return r;
}
}  // namespace

TEST(ClockTable, ShowsTheClockRatioAndWhyAResultIsThrottled) {
  const auto dir = testing::fresh_dir("clock-table");
  const auto table_path = dir / "table.txt";
  std::FILE* table = std::fopen(table_path.c_str(), "w");
  ASSERT_NE(table, nullptr);
  int throttled = -1;
  {
    DeviceDescription d;
    d.name = "NVIDIA H100 80GB HBM3";
    d.sm_count = 132;
    d.cc_major = 9;
    ResultReporter rep("", make_context(d, peaks_for_device(d), RunInfo{"h", "quick", "p"}), table);
    benchmark::BenchmarkReporter::Context ctx;
    ASSERT_TRUE(rep.ReportContext(ctx));
    rep.ReportRuns({clocked_run("matmul/capped/bf16/m:1", 0.959, 0, 0x4)});
    rep.ReportRuns({clocked_run("matmul/hot/bf16/m:1", 0.97, 1, 0x4 | 0x20)});
    rep.ReportRuns({clocked_run("matmul/slow/bf16/m:1", 0.85, 1, 0x4)});
    throttled = rep.throttled();
  }
  std::fclose(table);
  std::ifstream in(table_path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  EXPECT_EQ(throttled, 2) << "the power-capped run is not counted";
  EXPECT_NE(text.find(" clock  notes"), std::string::npos) << text;
  auto line_of = [&](const std::string& name) {
    const auto at = text.find(name);
    return at == std::string::npos ? std::string() : text.substr(at, text.find('\n', at) - at);
  };
  const std::string capped = line_of("matmul/capped/");
  EXPECT_NE(capped.find(" 0.96 "), std::string::npos) << capped;
  EXPECT_EQ(capped.find("THROTTLED"), std::string::npos) << capped;
  EXPECT_NE(line_of("matmul/hot/").find("0.97  THROTTLED (thermal/hw slowdown)"), std::string::npos) << text;
  EXPECT_NE(line_of("matmul/slow/").find("0.85  THROTTLED (low clock)"), std::string::npos) << text;
}

}  // namespace wflops
