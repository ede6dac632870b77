// The measuring harness, kept apart from what is measured (as nvbench does it). A benchmark
// supplies a Workload: its buffers, one launch, and a verification against a reference. The
// harness decides everything about measuring:
//  - memory: refuses (as that benchmark's error) a shape that does not fit;
//  - L2: inputs are replicated into several sets, rotated launch by launch, so that each set is
//    evicted from L2 before it is read again (small problems are not timed out of cache);
//  - verification before timing: poisoned output, fresh random inputs, the workload's reference
//    check; a failure is reported through SkipWithError and no FLOP/s is produced;
//  - batch planning (src/batch_plan.hpp): the first launches are waited for one by one, then warm-up
//    batches grow to about 1 ms, for at least 200 ms and until the SM clock settles. A batch held
//    behind the blocking kernel must fit in the stream's queue, so the harness counts the stream
//    operations of one launch (by capturing it into a CUDA graph that never runs) and sizes the
//    batch by them; a workload whose launch alone is too big, cannot be counted, or waits for the
//    GPU is timed without the block (counters blocked, stream_ops; the label says why);
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
#include "model/peaks.hpp"
#include "registry.hpp"

namespace wflops {

struct Verification {
  bool ok = false;
  double rel_err = 0;  // ||out - ref|| / ||ref|| over the compared elements
  double tolerance = 0;
  std::string detail;  // why it failed, or what was compared
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
  // Stream operations (kernels, copies, memsets, event records) one launch() enqueues, across all
  // the streams it uses; 0 (the default) lets the harness count them. An override must not be low:
  // it decides how many launches are held behind the blocking kernel.
  virtual long stream_ops_per_launch() const { return 0; }
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

// Must be called once before benchmarks run (by `wflops run`), after choosing the device.
void harness_init(const DeviceDescription& device, const Peaks& peaks);
// Frees the cached workload and the harness's stream and buffers.
void harness_release();

// The benchmark body: prepares (once per benchmark, kept across repetitions), verifies, times.
void measure(benchmark::State& state, const BenchSpec& spec, const WorkloadFactory& make);

// Sets CUDA_MODULE_LOADING=EAGER unless the user set it. Call it before anything initialises CUDA
// (first thing in main): with lazy loading, CUDA's default since 12.2, a kernel's module is loaded
// at its first launch, which may wait for the device to be idle (CUDA C++ Programming Guide, "Lazy
// Loading"), and behind the blocking kernel the device is not idle until the host releases it. The
// harness also runs the first launches of every workload without the block; eager loading covers
// kernels a library first uses later. nvbench sets the same variable for the same reason.
void prefer_eager_module_loading();

// The stream operations (graph nodes: kernels, copies, memsets, ...) that enqueue() puts on
// `stream` and the streams it joins, counted by capturing them into a CUDA graph (relaxed mode,
// which tolerates calls such as cudaMalloc) that is destroyed without running. 0 when the capture
// fails (e.g. enqueue() synchronises), with the stream out of capture and CUDA's error state cleared.
long count_stream_ops(cudaStream_t stream, const std::function<void()>& enqueue);

// Times a workload's own candidates (autotuning) the way the harness times a batch: the GPU time of
// `count` calls run back to back, behind the blocking kernel when `blocked` (the caller keeps the
// batch within batch_plan::kMaxBlockedOps, and runs each candidate once unblocked first), else
// enqueued as the host goes. Owns its flags and events, so it needs no harness_init().
class BlockedTimer {
 public:
  explicit BlockedTimer(cudaStream_t stream);
  ~BlockedTimer();
  BlockedTimer(const BlockedTimer&) = delete;
  BlockedTimer& operator=(const BlockedTimer&) = delete;
  // Seconds of GPU time of enqueue(0), ..., enqueue(count - 1); throws when the block timed out.
  double time(long count, bool blocked, const std::function<void(long)>& enqueue);

 private:
  void release();
  void free_resources();
  cudaStream_t stream_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  volatile int* flags_ = nullptr;  // [0]: release, [1]: timed out (host-mapped, pinned)
};

// One line for the result context: how L2 was kept out of small measurements.
std::string l2_policy();

// A fresh seed for each verification (never the same inputs twice in a run).
std::uint64_t fresh_seed();

}  // namespace wflops
