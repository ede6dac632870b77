#include "model/budget.hpp"

#include <fmt/core.h>

#include <cmath>

#include "errors.hpp"

namespace wflops::budget {

void require_positive(double value, const char* what) {
  // NaN fails both comparisons; infinity would make every answer 0 or infinity.
  if (!(value > 0.0) || !std::isfinite(value)) {
    throw UserError(fmt::format("{} must be a positive number (got {})", what, value));
  }
}

void require_positive_at_most(double value, const char* what, double max) {
  require_positive(value, what);
  if (value > max) throw UserError(fmt::format("{} {} is out of range (it must be at most {})", what, value, max));
}

void require_count(double value, const char* what, double max) {
  require_positive_at_most(value, what, max);
  if (value != std::floor(value)) {
    throw UserError(fmt::format("{} must be a whole number (got {})", what, value));
  }
}

TimeEstimate time_for_flops(double flops, double tflops_per_gpu, double gpus) {
  require_positive(flops, "the FLOP count");
  require_positive(tflops_per_gpu, "the TFLOP/s per GPU");
  require_positive(gpus, "the number of GPUs");
  TimeEstimate t;
  t.flops = flops;
  t.seconds = flops / (tflops_per_gpu * kTera * gpus);
  t.days = t.seconds / kSecondsPerDay;
  t.gpu_hours = t.seconds * gpus / kSecondsPerHour;
  return t;
}

double flops_for_time(double gpus, double days, double tflops_per_gpu) {
  require_positive(gpus, "the number of GPUs");
  require_positive(days, "the number of days");
  require_positive(tflops_per_gpu, "the TFLOP/s per GPU");
  return tflops_per_gpu * kTera * gpus * days * kSecondsPerDay;
}

}  // namespace wflops::budget
