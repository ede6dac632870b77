#include "batch_plan.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

namespace wflops::batch_plan {

long max_blocked_launches(long ops_per_launch) {
  if (ops_per_launch <= 0) return 0;
  return std::max(0L, (kMaxBlockedOps - kBatchOverheadOps) / ops_per_launch);
}

namespace {

// Launches for kTargetSeconds of GPU time, in 1..kMaxLaunches.
long launches_for_target(double seconds_per_launch) {
  if (!(seconds_per_launch > 0)) return kMaxLaunches;  // too fast to time (or NaN): as many as allowed
  const double wanted = std::ceil(kTargetSeconds / seconds_per_launch);
  return wanted >= static_cast<double>(kMaxLaunches) ? kMaxLaunches : std::max(1L, static_cast<long>(wanted));
}

}  // namespace

Plan plan_batch(double seconds_per_launch, long ops_per_launch, bool synchronizes) {
  Plan p;
  p.launches = launches_for_target(seconds_per_launch);
  if (synchronizes) {
    p.why = "the workload waits for the GPU inside its launch";
    return p;
  }
  if (ops_per_launch <= 0) {
    p.why = "the stream operations of one launch could not be counted";
    return p;
  }
  const long fit = max_blocked_launches(ops_per_launch);
  if (fit == 0) {
    p.why = fmt::format("one launch enqueues {} stream operations, more than a blocked batch may hold ({})",
                        ops_per_launch, kMaxBlockedOps - kBatchOverheadOps);
    return p;
  }
  p.blocked = true;
  p.launches = std::min(p.launches, fit);
  return p;
}

long next_warmup_launches(long launches, double batch_seconds, long ops_per_launch, bool blocked) {
  launches = std::max(1L, launches);
  const long limit = blocked ? std::max(1L, max_blocked_launches(ops_per_launch)) : kMaxLaunches;
  if (batch_seconds >= kTargetSeconds) return std::min(launches, limit);
  return std::min(2 * launches, limit);
}

bool warmup_done(double elapsed_seconds, const std::vector<ClockSample>& clocks) {
  if (elapsed_seconds >= kWarmupMaxSeconds) return true;
  if (elapsed_seconds < kWarmupMinSeconds) return false;
  if (clocks.empty()) return true;  // nothing to watch: the minimum time it is
  const ClockSample& last = clocks.back();
  // The latest sample at least a window before the last one.
  for (auto it = clocks.rbegin(); it != clocks.rend(); ++it) {
    if (last.at_seconds - it->at_seconds >= kClockWindowSeconds) {
      const double hi = std::max(last.mhz, it->mhz), lo = std::min(last.mhz, it->mhz);
      return hi - lo <= kClockTolerance * hi;
    }
  }
  return false;  // samples do not span a window yet
}

std::optional<double> median(std::vector<double> v) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::optional<std::size_t> choose_candidate(const std::vector<std::optional<double>>& seconds, double margin) {
  std::optional<std::size_t> fastest;
  for (std::size_t i = 0; i < seconds.size(); ++i) {
    if (seconds[i] && *seconds[i] > 0 && (!fastest || *seconds[i] < *seconds[*fastest])) fastest = i;
  }
  if (!fastest || seconds.empty() || !seconds[0] || !(*seconds[0] > 0)) return fastest;
  return *seconds[0] / *seconds[*fastest] > 1 + margin ? *fastest : 0;
}

}  // namespace wflops::batch_plan
