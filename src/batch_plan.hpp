// How the measuring harness sizes and guards a timed batch: pure functions of what it measured
// (the GPU time of one launch, the stream operations one launch enqueues, the SM clock during
// warm-up), kept apart from CUDA so that they are tested on the CPU.
//
// A timed batch is enqueued behind a blocking kernel, so that the GPU runs it back to back (the
// technique nvbench calls a blocking kernel). That is only safe while the whole batch fits in the
// stream's queue of pending work: when the queue is full, the host waits inside a launch for the GPU
// to retire work, while the GPU waits for the host to release the blocking kernel, until the
// kernel's timeout ends both and the batch's timing is void.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace wflops::batch_plan {

// GPU time a timed batch aims at. CUDA events resolve about 0.5 us (CUDA Runtime API reference,
// cudaEventElapsedTime), so 1 ms keeps their error near 0.05% while a repetition still holds many
// batches.
inline constexpr double kTargetSeconds = 1e-3;

// A CUDA stream holds about a thousand pending operations before a launch blocks the host (not
// documented by NVIDIA; observed and reported on the NVIDIA developer forums, "CUDA stream are
// blocked when launch lots of kernels (>1000)", and Stack Overflow question 53970187). A blocked
// batch holds at most half of that, which leaves room for what a count may miss.
inline constexpr long kMaxBlockedOps = 500;

// What a blocked batch enqueues besides the launches: the blocking kernel and the two events.
inline constexpr long kBatchOverheadOps = 3;

// The most launches in any batch. A batch that is not held back cannot wedge (the GPU drains the
// queue while the host enqueues), but a bound keeps one wrong estimate from making one batch long.
inline constexpr long kMaxLaunches = 4096;

// Warm-up: the first launches run without the blocking kernel, one at a time and waited for, because
// a launch may need the device idle (CUDA lazy module loading loads a kernel's module at its first
// launch, which may need the device to synchronise: CUDA C++ Programming Guide, "Lazy Loading";
// nvbench's asynchronous benchmarks deadlocked so).
inline constexpr int kUnblockedWarmupLaunches = 2;
// Then batches, growing to kTargetSeconds, for at least kWarmupMinSeconds (GPU boost clocks and
// power management settle over tens to hundreds of milliseconds) and until the SM clock is stable:
// two samples at least kClockWindowSeconds apart differ by at most kClockTolerance. Never longer
// than kWarmupMaxSeconds (a clock that wanders under a power cap never settles).
inline constexpr double kWarmupMinSeconds = 0.2;
inline constexpr double kWarmupMaxSeconds = 1.0;
inline constexpr double kClockWindowSeconds = 0.05;
inline constexpr double kClockTolerance = 0.02;

// Autotuning (cuBLASLt algorithms): each candidate is timed once per round, the candidates
// interleaved, kAutotuneRounds rounds, and each candidate's median kept. The heuristic's first choice
// stays unless another is faster by more than kAutotuneMargin (a smaller difference is within the
// run-to-run spread of one GEMM, so it would pick by noise).
inline constexpr int kAutotuneRounds = 5;
inline constexpr double kAutotuneMargin = 0.02;

struct Plan {
  long launches = 1;     // per timed batch
  bool blocked = false;  // enqueued behind the blocking kernel
  std::string why;       // when not blocked: why not
};

// The most launches of `ops_per_launch` stream operations a blocked batch may hold; 0 when even one
// does not fit or the count is unknown (ops_per_launch <= 0).
long max_blocked_launches(long ops_per_launch);

// The timed batch for a workload whose launch takes `seconds_per_launch` of GPU time and enqueues
// `ops_per_launch` stream operations (<= 0: unknown, the count failed). `synchronizes`: the launch
// waits for the GPU itself. Launches: enough for kTargetSeconds, at least 1, at most kMaxLaunches
// and, when blocked, max_blocked_launches. Blocked unless it synchronises, its operations are
// unknown, or one launch does not fit.
Plan plan_batch(double seconds_per_launch, long ops_per_launch, bool synchronizes);

// The next warm-up batch after one of `launches` that took `batch_seconds`: twice as many while
// under kTargetSeconds (within the limit `plan_batch` would apply), else the same.
long next_warmup_launches(long launches, double batch_seconds, long ops_per_launch, bool blocked);

struct ClockSample {
  double at_seconds = 0;  // since the warm-up began
  unsigned mhz = 0;
};

// Whether warm-up may end after `elapsed_seconds`, given the SM clock samples taken so far (in time
// order; none when NVML is unavailable, then kWarmupMinSeconds suffices).
bool warmup_done(double elapsed_seconds, const std::vector<ClockSample>& clocks);

// The median (the mean of the middle two for an even count); nullopt for none.
std::optional<double> median(std::vector<double> v);

// The autotune choice among candidates in the heuristic's order: `seconds[i]` is candidate i's median
// time, nullopt when it did not run. Candidate 0 unless another is faster by more than `margin`
// (time(0) / time(i) > 1 + margin); the fastest that ran when candidate 0 did not; nullopt when
// none ran.
std::optional<std::size_t> choose_candidate(const std::vector<std::optional<double>>& seconds,
                                            double margin = kAutotuneMargin);

}  // namespace wflops::batch_plan
