// The measuring harness, kept apart from what is measured (as nvbench does it). A benchmark
// supplies a Workload: its buffers, one launch, and a verification against a reference. The
// harness decides everything about measuring:
//  - memory: refuses (as that benchmark's error) a shape that does not fit;
//  - L2: inputs are replicated into several sets, rotated launch by launch, so that each set is
//    evicted from L2 before it is read again (small problems are not timed out of cache);
//  - verification before timing: poisoned output, fresh random inputs, the workload's reference
//    check; a failure is reported through SkipWithError and no FLOP/s is produced;
//  - warm-up, then batches of launches between CUDA events, enqueued behind a blocking kernel so
//    the GPU runs them back to back; each Google Benchmark iteration is one launch, and the
//    batch's GPU time is booked to the batch's last iteration (manual time);
//  - clocks and energy: NVML's SM clock, throttle reasons and energy counter read while each batch
//    runs, judged by clock_assessment.hpp (power_capped, clock_ratio, throttled, watts, joules);
//  - counters: flops, tflops, pct_peak, bytes, gbps, throttled, sm_clock_mhz, l2_rotation;
//  - the time split of a multi-part workload (a training step: GEMMs, elementwise, cast,
//    optimizer): after the timed batches, a few extra iterations are run with a CUDA event
//    between the parts (PhaseMarks), and each part's median time becomes the counters
//    phase_ms_<part> and phase_pct_<part> (its share of the step), and phase_gbps_<part> when the
//    benchmark states that part's least bytes (phase_bytes_<part>);
//  - the workload's own measured counters (measured_counters()).
#pragma once
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "device_description.hpp"
#include "peaks.hpp"
#include "registry.hpp"

namespace wflops {

struct Verification {
  bool ok = false;
  double rel_err = 0;    // ||out - ref|| / ||ref|| over the compared elements
  double tolerance = 0;
  std::string detail;    // why it failed, or what was compared
};

// Where one iteration's time goes. A workload that has parts calls mark("gemm") after enqueuing
// each part: the GPU time since the previous mark is booked to that part; parts with the same name
// add up. When the harness is not recording (every timed launch), mark() does nothing.
class PhaseMarks {
 public:
  PhaseMarks() = default;  // not recording
  void mark(const char* phase);
  bool recording() const { return stream_ != nullptr; }

 private:
  friend class PhaseRecording;
  cudaStream_t stream_ = nullptr;
  std::vector<std::pair<std::string, cudaEvent_t>>* marks_ = nullptr;
  std::vector<cudaEvent_t>* pool_ = nullptr;
};

class Workload {
 public:
  virtual ~Workload() = default;
  // Bytes of one set of inputs (what the L2 rotation replicates).
  virtual double input_bytes() const = 0;
  // Device memory needed with `input_sets` copies of the inputs.
  virtual double device_bytes(int input_sets) const = 0;
  // Allocates with `input_sets` input copies and fills every copy with random data.
  virtual void allocate(int input_sets, cudaStream_t stream) = 0;
  // Chooses among implementations (e.g. cuBLASLt algorithms) before verification; default none.
  virtual void tune(cudaStream_t /*stream*/) {}
  // Poisons the output, writes fresh random inputs into set 0, runs once, checks the result.
  virtual Verification verify(cudaStream_t stream) = 0;
  // Enqueues one iteration reading input set `set`; must not synchronise.
  virtual void launch(cudaStream_t stream, int set) = 0;
  // Workloads made of parts (training steps) override both: launch_marked() enqueues the same work
  // as launch(), calling marks.mark(part) after each part; launch() may simply call it with a
  // PhaseMarks that does not record.
  virtual bool has_phases() const { return false; }
  virtual void launch_marked(cudaStream_t stream, int set, PhaseMarks& /*marks*/) { launch(stream, set); }
  // True when launch() waits for the GPU (e.g. copies data-dependent sizes to the host, as token
  // choice routing must before a grouped GEMM with host-side problem sizes). The harness then
  // times its batches without holding the stream behind the blocking kernel, so the measured
  // time includes the host round trips, as it would in training.
  virtual bool synchronizes() const { return false; }
  // Figures the workload measured itself, written as counters (e.g. an MoE layer's load_imbalance,
  // max / mean tokens per expert of the verified routing); read after verification and timing.
  virtual std::map<std::string, double> measured_counters() const { return {}; }
  // What was chosen (e.g. "algo 2 of 8"), appended to the benchmark's label.
  virtual std::string describe() const { return ""; }
};

using WorkloadFactory = std::function<std::unique_ptr<Workload>()>;

// Must be called once before benchmarks run (by `wflops run`), after choosing the device.
void harness_init(const DeviceDescription& device, const Peaks& peaks);
// Frees the cached workload and the harness's stream and buffers.
void harness_release();

// The benchmark body: prepares (once per benchmark, kept across repetitions), verifies, times.
void measure(benchmark::State& state, const BenchSpec& spec, const WorkloadFactory& make);

// One line for the result context: how L2 was kept out of small measurements.
std::string l2_policy();

// A fresh seed for each verification (never the same inputs twice in a run).
std::uint64_t fresh_seed();

}  // namespace wflops
