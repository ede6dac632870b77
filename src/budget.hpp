// Training time from a compute budget and back: tau * T = C (CONVENTIONS.md, "A training run"),
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

}  // namespace wflops::budget
