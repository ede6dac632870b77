// Training time from a compute budget and back: tau * T = C (docs/conventions.md, "A training run"),
// with tau the achieved FLOP/s per GPU, T the wall-clock time and C the FLOPs of the run.
// Pure arithmetic, no GPU; `wflops budget` and `wflops plan` use it.
#pragma once

namespace wflops::budget {

inline constexpr double kSecondsPerDay = 86400.0;
inline constexpr double kSecondsPerHour = 3600.0;
inline constexpr double kTera = 1e12;

struct TimeEstimate {
  double flops = 0;      // FLOPs of the run
  double seconds = 0;    // wall-clock seconds on all the GPUs together
  double days = 0;       // the same in days
  double gpu_hours = 0;  // seconds x GPUs / 3600: what a cluster bills
};

// Time to do `flops` on `gpus` GPUs that each sustain `tflops_per_gpu` TFLOP/s:
// T = C / (tau * K). Throws UserError unless every argument is finite and positive.
TimeEstimate time_for_flops(double flops, double tflops_per_gpu, double gpus);

// FLOPs that `gpus` GPUs at `tflops_per_gpu` TFLOP/s each do in `days`: C = tau * K * T.
double flops_for_time(double gpus, double days, double tflops_per_gpu);

// Throws UserError naming `what` unless `value` is finite and > 0.
void require_positive(double value, const char* what);

// Throws UserError naming `what` unless `value` is finite, > 0 and at most `max`: a quantity whose
// larger values would only overflow the answers (1e300 parameters) is refused with its range.
void require_positive_at_most(double value, const char* what, double max);

// Throws UserError naming `what` unless `value` is a whole number from 1 to `max` (a count of
// layers, heads, experts, GPUs: 768.5 of them is a typo, not a model).
void require_count(double value, const char* what, double max);

// The ranges the commands accept: far beyond any model or cluster, far below overflow.
inline constexpr double kMaxHidden = 1048576;  // 2^20
inline constexpr double kMaxLayers = 100000;
inline constexpr double kMaxVocab = 1e9;
inline constexpr double kMaxSeq = 1e9;
inline constexpr double kMaxExperts = 1e6;
inline constexpr double kMaxGpus = 1e8;
inline constexpr double kMaxTflopsPerGpu = 1e6;  // an exaFLOP/s per GPU
inline constexpr double kMaxParams = 1e18;
inline constexpr double kMaxTokens = 1e20;
inline constexpr double kMaxDays = 1e6;
inline constexpr double kMaxFlops = 1e40;

}  // namespace wflops::budget
