#include "cuda/harness.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>

#include "batch_plan.hpp"
#include "clock_assessment.hpp"
#include "common/blocking_kernel.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/nvml.hpp"
#include "model/model_phases.hpp"

namespace wflops {

namespace {

// Inputs are replicated until one pass over all sets reads this many times the L2 size.
constexpr double kL2Multiple = 4.0;
constexpr int kMaxInputSets = 64;
// Never use more than this share of free memory for the rotation copies.
constexpr double kRotationMemoryShare = 0.8;
// Batch sizes, warm-up and when to hold a batch behind the blocking kernel: src/batch_plan.hpp.
constexpr unsigned long long kBlockTimeoutNs = 5'000'000'000ULL;

struct Prepared {
  std::string name;
  std::unique_ptr<Workload> workload;
  std::string error;
  int input_sets = 1;
  int batch = 1;
  int rotation = 0;
  double verify_rel_err = 0;
  long stream_ops = 0;   // per launch; 0 when not counted
  bool blocked = false;  // timed batches held behind the blocking kernel
  std::string unblocked_why;
};

struct Harness {
  bool ready = false;
  DeviceDescription device;
  Peaks peaks;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  volatile int* flags = nullptr;  // [0]: release, [1]: timed out (host-mapped, pinned)
  nvml::Device* nvml_device = nullptr;
  Prepared current;
};

Harness& harness() {
  static Harness h;
  return h;
}

struct BatchSample {
  double seconds = 0;
  std::optional<unsigned> sm_clock_mhz;
  std::uint64_t reasons = 0;
  std::optional<EnergySample> energy;  // launches_done is filled in by the timing loop
};

// Holds the stream with the blocking kernel, enqueues `count` launches between two events,
// releases the stream and waits: the measured time is the GPU's, launches back to back. A workload
// that synchronises inside its launch cannot be held back; its batch is timed without the block.
class Batch {
 public:
  Batch(Harness& h, bool block) : h_(h), block_(block) {
    if (block_) {
      h_.flags[0] = 0;
      h_.flags[1] = 0;
      std::atomic_thread_fence(std::memory_order_seq_cst);
      CUDA_CHECK(kernels::launch_blocking_kernel(h_.flags, h_.flags + 1, kBlockTimeoutNs, h_.stream));
    }
    CUDA_CHECK(cudaEventRecord(h_.start, h_.stream));
  }
  // Releases the stream even when a launch threw, so nothing stays blocked.
  ~Batch() {
    if (!closed_) {
      release();
      cudaStreamSynchronize(h_.stream);
    }
  }
  BatchSample close() {
    CUDA_CHECK(cudaEventRecord(h_.stop, h_.stream));
    release();
    closed_ = true;
    BatchSample s;
    // Sample the clocks while the batch runs, not after it, when the GPU is idling down.
    if (h_.nvml_device) {
      s.sm_clock_mhz = nvml::sm_clock_mhz(h_.nvml_device);
      s.reasons = nvml::throttle_reasons(h_.nvml_device).value_or(0);
      if (const auto mj = nvml::total_energy_mj(h_.nvml_device)) {
        const auto now = std::chrono::steady_clock::now().time_since_epoch();
        s.energy = EnergySample{std::chrono::duration<double>(now).count(), *mj, 0};
      }
    }
    CUDA_CHECK(cudaEventSynchronize(h_.stop));
    if (block_ && h_.flags[1]) {
      throw std::runtime_error(
          "timing invalid: the blocking kernel timed out (a launch synchronised "
          "with the stream, or enqueueing took over 5 s)");
    }
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, h_.start, h_.stop));
    s.seconds = ms / 1e3;
    return s;
  }

 private:
  void release() {
    if (!block_) return;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    h_.flags[0] = 1;
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  Harness& h_;
  bool block_;
  bool closed_ = false;
};

double time_launches(Harness& h, Prepared& p, long count, bool block) {
  Batch batch(h, block);
  for (long i = 0; i < count; ++i) p.workload->launch(h.stream, p.rotation++ % p.input_sets);
  return batch.close().seconds;
}

// Iterations recorded with events between their parts, for the time split of a step.
constexpr int kPhaseRuns = 9;

}  // namespace

// Runs kPhaseRuns marked iterations back to back (behind the blocking kernel, like a timed
// batch, as many to a batch as fit with their marks) and returns each part's median time in
// milliseconds, in the order the parts first appear.
class PhaseRecording {
 public:
  explicit PhaseRecording(Harness& h) : h_(h) {}
  ~PhaseRecording() {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }
  std::vector<std::pair<std::string, double>> run(Prepared& p) {
    std::vector<std::vector<std::pair<std::string, cudaEvent_t>>> marks(kPhaseRuns);
    std::vector<cudaEvent_t> begins(kPhaseRuns);
    for (cudaEvent_t& b : begins) b = new_event();
    // Each mark is one more stream operation: a first marked iteration, not held back and not
    // kept, says how many an iteration records, and so how many iterations one held batch fits.
    long per_batch = 0;
    if (p.blocked) {
      std::vector<std::pair<std::string, cudaEvent_t>> probe;
      Batch batch(h_, false);
      enqueue_marked(p, probe, new_event());
      batch.close();
      per_batch = batch_plan::max_blocked_launches(p.stream_ops + static_cast<long>(probe.size()) + 1);
    }
    for (int i = 0; i < kPhaseRuns;) {
      const int n = per_batch > 0 ? static_cast<int>(std::min<long>(per_batch, kPhaseRuns - i)) : kPhaseRuns - i;
      Batch batch(h_, per_batch > 0);
      for (int j = 0; j < n; ++j, ++i) enqueue_marked(p, marks[i], begins[i]);
      batch.close();
    }
    std::vector<std::string> order;
    std::map<std::string, std::vector<double>> samples;
    for (int i = 0; i < kPhaseRuns; ++i) {
      std::map<std::string, double> sum;
      cudaEvent_t previous = begins[i];
      for (const auto& [phase, event] : marks[i]) {
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, previous, event));
        if (!samples.count(phase) && !sum.count(phase)) order.push_back(phase);
        sum[phase] += ms;
        previous = event;
      }
      for (const auto& [phase, ms] : sum) samples[phase].push_back(ms);
    }
    std::vector<std::pair<std::string, double>> medians;
    for (const std::string& phase : order) {
      std::vector<double>& v = samples[phase];
      std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
      medians.emplace_back(phase, v[v.size() / 2]);
    }
    return medians;
  }

 private:
  void enqueue_marked(Prepared& p, std::vector<std::pair<std::string, cudaEvent_t>>& marks, cudaEvent_t begin) {
    PhaseMarks m;
    m.stream_ = h_.stream;
    m.marks_ = &marks;
    m.pool_ = &events_;
    CUDA_CHECK(cudaEventRecord(begin, h_.stream));
    p.workload->launch_marked(h_.stream, p.rotation++ % p.input_sets, m);
  }
  cudaEvent_t new_event() {
    cudaEvent_t e = nullptr;
    CUDA_CHECK(cudaEventCreate(&e));
    events_.push_back(e);
    return e;
  }
  Harness& h_;
  std::vector<cudaEvent_t> events_;
};

void PhaseMarks::mark(const char* phase) {
  if (!stream_) return;
  cudaEvent_t e = nullptr;
  CUDA_CHECK(cudaEventCreate(&e));
  pool_->push_back(e);
  CUDA_CHECK(cudaEventRecord(e, stream_));
  marks_->emplace_back(phase, e);
}

namespace {

int choose_input_sets(const Workload& w, double l2_bytes, double free_bytes) {
  int sets = 1;
  if (w.input_bytes() > 0 && l2_bytes > 0) {
    sets = static_cast<int>(std::ceil(kL2Multiple * l2_bytes / w.input_bytes()));
    sets = std::clamp(sets, 1, kMaxInputSets);
  }
  while (sets > 1 && w.device_bytes(sets) > kRotationMemoryShare * free_bytes) --sets;
  return sets;
}

std::string gib(double bytes) { return fmt::format("{:.2f} GiB", bytes / (1024.0 * 1024.0 * 1024.0)); }

// Warm-up (clocks up, caches and library state settled), which also measures what the timed batch
// follows from: one launch's GPU time and its stream operations (batch_plan.hpp gives the reasons).
void warm_up(Harness& h, Prepared& p) {
  Workload& w = *p.workload;
  const auto began = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count(); };
  // 1. The first launches one at a time, not held back, each waited for: a launch that loads a
  //    module, or otherwise needs the device idle, finds it idle.
  double per_launch = 0;
  for (int i = 0; i < batch_plan::kUnblockedWarmupLaunches; ++i) per_launch = time_launches(h, p, 1, false);
  // 2. Its stream operations. A launch that waits for the GPU cannot be captured, nor held back.
  if (!w.synchronizes()) {
    p.stream_ops = w.stream_ops_per_launch();
    if (p.stream_ops <= 0) p.stream_ops = count_stream_ops(h.stream, [&] { w.launch(h.stream, 0); });
  }
  p.blocked = batch_plan::plan_batch(per_launch, p.stream_ops, w.synchronizes()).blocked;
  // 3. Batches as they will be timed, growing until one passes the target time, for at least the
  //    minimum warm-up time and until the SM clock is stable. The clock is read right after each
  //    batch, before the idle GPU could lower it.
  std::vector<batch_plan::ClockSample> clocks;
  std::string held_failed;
  long count = 1;
  do {
    double seconds = 0;
    try {
      seconds = time_launches(h, p, count, p.blocked);
    } catch (const std::runtime_error&) {
      if (!p.blocked || !h.flags[1]) throw;
      // The held batch timed out (the count missed something that waits for the GPU, or the
      // queue filled): this workload is timed without the block, which costs one timeout, not
      // the benchmark.
      held_failed = fmt::format("a held batch of {} launches timed out during warm-up", count);
      p.blocked = false;
      count = 1;
      continue;
    }
    per_launch = seconds / static_cast<double>(count);
    count = batch_plan::next_warmup_launches(count, seconds, p.stream_ops, p.blocked);
    if (h.nvml_device) {
      if (const auto mhz = nvml::sm_clock_mhz(h.nvml_device)) clocks.push_back({elapsed(), *mhz});
    }
  } while (!batch_plan::warmup_done(elapsed(), clocks));
  const batch_plan::Plan plan = batch_plan::plan_batch(per_launch, p.stream_ops, w.synchronizes());
  p.batch = static_cast<int>(plan.launches);
  p.blocked = plan.blocked && held_failed.empty();
  p.unblocked_why = held_failed.empty() ? plan.why : held_failed;
}

void prepare(Harness& h, Prepared& p, const WorkloadFactory& make) {
  p.workload = make();
  std::size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const double needed = p.workload->device_bytes(1);
  if (needed > static_cast<double>(free_bytes)) {
    p.error = fmt::format("out of memory: this shape needs {} of device memory, {} of {} are free", gib(needed),
                          gib(static_cast<double>(free_bytes)), gib(static_cast<double>(total_bytes)));
    return;
  }
  p.input_sets = choose_input_sets(*p.workload, h.device.l2_bytes, static_cast<double>(free_bytes));
  p.workload->allocate(p.input_sets, h.stream);
  p.workload->tune(h.stream);
  const Verification v = p.workload->verify(h.stream);
  if (!v.ok) {
    p.error = "verification failed: " + v.detail;
    return;
  }
  p.verify_rel_err = v.rel_err;
  warm_up(h, p);
}

}  // namespace

void prefer_eager_module_loading() {
  // setenv with overwrite 0 keeps a value the user chose (POSIX).
  setenv("CUDA_MODULE_LOADING", "EAGER", 0);
}

namespace {

// Nodes of a captured graph that stand for stream operations: a child graph counts its own nodes,
// empty nodes (joins) none. -1 when the graph cannot be read.
long graph_ops(cudaGraph_t graph) {
  std::size_t n = 0;
  if (cudaGraphGetNodes(graph, nullptr, &n) != cudaSuccess) return -1;
  std::vector<cudaGraphNode_t> nodes(n);
  if (n > 0 && cudaGraphGetNodes(graph, nodes.data(), &n) != cudaSuccess) return -1;
  long ops = 0;
  for (cudaGraphNode_t node : nodes) {
    cudaGraphNodeType type{};
    if (cudaGraphNodeGetType(node, &type) != cudaSuccess) return -1;
    if (type == cudaGraphNodeTypeGraph) {
      cudaGraph_t child = nullptr;
      if (cudaGraphChildGraphNodeGetGraph(node, &child) != cudaSuccess) return -1;
      const long inner = graph_ops(child);
      if (inner < 0) return -1;
      ops += inner;
    } else if (type != cudaGraphNodeTypeEmpty) {
      ++ops;
    }
  }
  return ops;
}

}  // namespace

long count_stream_ops(cudaStream_t stream, const std::function<void()>& enqueue) {
  // While a stream captures, what is enqueued on it is recorded into a graph and not executed
  // (CUDA Runtime API, cudaStreamBeginCapture). Relaxed mode lets the thread make calls that are
  // unsafe during capture (cudaMalloc, ...) instead of failing them (cudaThreadExchangeStreamCaptureMode).
  if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  bool ok = true;
  try {
    enqueue();
  } catch (const std::exception&) {
    ok = false;  // e.g. a call capture does not allow; the capture is then invalidated
  }
  // End the capture whatever happened, so the stream runs work again: an invalidated capture still
  // has to be ended, and then returns an error and no graph.
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  cudaGraph_t graph = nullptr;
  const bool known = cudaStreamIsCapturing(stream, &status) == cudaSuccess;
  if (!known || status != cudaStreamCaptureStatusNone) {
    if (cudaStreamEndCapture(stream, &graph) != cudaSuccess) ok = false;
  }
  if (!known || status != cudaStreamCaptureStatusActive) ok = false;
  long ops = 0;
  if (graph) {
    if (ok) ops = std::max(0L, graph_ops(graph));
    cudaGraphDestroy(graph);
  }
  // The failed calls above leave their error as the thread's last error; a later CUDA_CHECK of
  // cudaGetLastError() must not report it. (A sticky error of the context would not be cleared.)
  (void)cudaGetLastError();
  return ops;
}

BlockedTimer::BlockedTimer(cudaStream_t stream) : stream_(stream) {
  void* flags = nullptr;
  CUDA_CHECK(cudaHostAlloc(&flags, 2 * sizeof(int), cudaHostAllocMapped));
  flags_ = static_cast<volatile int*>(flags);
  flags_[0] = 1;
  flags_[1] = 0;
  cudaError_t e = cudaEventCreate(&start_);
  if (e == cudaSuccess) e = cudaEventCreate(&stop_);
  if (e != cudaSuccess) {
    free_resources();
    throw_cuda(e, "cudaEventCreate", __FILE__, __LINE__);
  }
}

BlockedTimer::~BlockedTimer() { free_resources(); }

void BlockedTimer::free_resources() {
  if (start_) cudaEventDestroy(start_);
  if (stop_) cudaEventDestroy(stop_);
  if (flags_) cudaFreeHost(const_cast<int*>(flags_));
  start_ = stop_ = nullptr;
  flags_ = nullptr;
}

void BlockedTimer::release() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  flags_[0] = 1;
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

double BlockedTimer::time(long count, bool blocked, const std::function<void(long)>& enqueue) {
  if (blocked) {
    flags_[0] = 0;
    flags_[1] = 0;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    CUDA_CHECK(kernels::launch_blocking_kernel(flags_, flags_ + 1, kBlockTimeoutNs, stream_));
  }
  try {
    CUDA_CHECK(cudaEventRecord(start_, stream_));
    for (long i = 0; i < count; ++i) enqueue(i);
    CUDA_CHECK(cudaEventRecord(stop_, stream_));
  } catch (...) {
    release();  // nothing may stay held: release, let what was enqueued finish, then report
    cudaStreamSynchronize(stream_);
    throw;
  }
  release();
  CUDA_CHECK(cudaEventSynchronize(stop_));
  if (blocked && flags_[1]) {
    throw std::runtime_error(
        "timing invalid: the blocking kernel timed out (a call synchronised with the "
        "stream, or enqueueing took over 5 s)");
  }
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
  return ms / 1e3;
}

void harness_init(const DeviceDescription& device, const Peaks& peaks) {
  Harness& h = harness();
  h.device = device;
  h.peaks = peaks;
  CUDA_CHECK(cudaSetDevice(device.index));
  CUDA_CHECK(cudaStreamCreateWithFlags(&h.stream, cudaStreamNonBlocking));
  CUDA_CHECK(cudaEventCreate(&h.start));
  CUDA_CHECK(cudaEventCreate(&h.stop));
  void* flags = nullptr;
  CUDA_CHECK(cudaHostAlloc(&flags, 2 * sizeof(int), cudaHostAllocMapped));
  h.flags = static_cast<volatile int*>(flags);
  h.nvml_device = device.nvml ? nvml::device_by_pci_bus_id(device.pci_bus_id) : nullptr;
  h.ready = true;
}

void harness_release() {
  Harness& h = harness();
  if (!h.ready) return;
  h.current = Prepared{};
  cudaEventDestroy(h.start);
  cudaEventDestroy(h.stop);
  cudaStreamDestroy(h.stream);
  cudaFreeHost(const_cast<int*>(h.flags));
  h.ready = false;
}

std::string l2_policy() {
  return fmt::format(
      "inputs replicated and rotated launch by launch until a pass reads >= {}x the L2 size "
      "(at most {} sets, within {:.0f}% of free memory); counter l2_rotation = sets used",
      kL2Multiple, kMaxInputSets, kRotationMemoryShare * 100);
}

std::uint64_t fresh_seed() {
  static std::uint64_t counter = 0;
  const auto now = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return now ^ (0x9E3779B97F4A7C15ULL * ++counter);
}

void measure(benchmark::State& state, const BenchSpec& spec, const WorkloadFactory& make) {
  Harness& h = harness();
  if (!h.ready) {
    state.SkipWithError("internal error: the measuring harness was not initialised");
    return;
  }
  Prepared& p = h.current;
  if (p.name != spec.name) {
    p = Prepared{};  // frees the previous benchmark's memory first
    p.name = spec.name;
    try {
      prepare(h, p, make);
    } catch (const CudaError& e) {
      p.error = e.out_of_memory() ? std::string("out of memory: ") + e.what() : e.what();
    } catch (const std::exception& e) {
      p.error = e.what();
    }
    if (!p.error.empty()) p.workload.reset();
  }
  if (!p.error.empty()) {
    state.SkipWithError(p.error.c_str());
    return;
  }

  double total_seconds = 0;
  long launches = 0;
  std::vector<BatchSample> samples;  // one per timed batch: clocks, reasons, energy
  try {
    std::optional<Batch> batch;
    for (auto _ : state) {
      if (!batch) batch.emplace(h, p.blocked);
      p.workload->launch(h.stream, p.rotation++ % p.input_sets);
      ++launches;
      if (launches % p.batch == 0 || launches == static_cast<long>(state.max_iterations)) {
        BatchSample s = batch->close();
        batch.reset();
        state.SetIterationTime(s.seconds);
        total_seconds += s.seconds;
        if (s.energy) s.energy->launches_done = launches;
        samples.push_back(s);
      } else {
        state.SetIterationTime(0.0);  // booked with the batch's last launch
      }
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  if (launches == 0 || total_seconds <= 0) return;
  std::vector<std::pair<std::string, double>> phases;
  if (p.workload->has_phases()) {
    try {
      phases = PhaseRecording(h).run(p);
    } catch (const std::exception& e) {
      state.SkipWithError((std::string("recording the time split: ") + e.what()).c_str());
      return;
    }
  }

  const double per_launch = total_seconds / static_cast<double>(launches);
  // A memory-bound benchmark (a cast, a copy) counts no FLOPs: it reports bytes/s, and its share
  // of the datasheet bandwidth as pct_peak_bw, instead of TFLOP/s.
  if (spec.flops > 0) {
    state.counters["flops"] = spec.flops;
    state.counters["tflops"] = spec.flops / per_launch / 1e12;
    if (const auto peak = h.peaks.peak(spec.dtype)) {
      state.counters["pct_peak"] = 100.0 * spec.flops / per_launch / 1e12 / *peak;
      // A model step's model FLOPs (weight + attention, the MFU numerator) against the same peak.
      const auto model = spec.counters.find(model_phases::kModelFlops);
      if (model != spec.counters.end()) {
        state.counters[model_phases::kPctPeakModel] = 100.0 * model->second / per_launch / 1e12 / *peak;
      }
    }
  }
  for (const auto& [key, value] : spec.counters) state.counters[key] = value;
  if (spec.bytes > 0) {
    state.counters["bytes"] = spec.bytes;
    state.counters["gbps"] = spec.bytes / per_launch / 1e9;
    if (h.peaks.gbps > 0) state.counters["pct_peak_bw"] = 100.0 * spec.bytes / per_launch / 1e9 / h.peaks.gbps;
  }
  double phased_ms = 0;
  for (const auto& [phase, ms] : phases) phased_ms += ms;
  for (const auto& [phase, ms] : phases) {
    state.counters["phase_ms_" + phase] = ms;
    if (phased_ms > 0) state.counters["phase_pct_" + phase] = 100.0 * ms / phased_ms;
    const auto bytes = spec.counters.find(kPhaseBytesPrefix + phase);
    if (bytes != spec.counters.end() && ms > 0) {
      state.counters["phase_gbps_" + phase] = bytes->second / ms / 1e6;  // bytes per ms / 1e6 = GB/s
    }
  }
  state.counters["blocked"] = p.blocked ? 1 : 0;
  if (p.stream_ops > 0) state.counters["stream_ops"] = static_cast<double>(p.stream_ops);
  for (const auto& [key, value] : p.workload->measured_counters()) state.counters[key] = value;
  state.counters["l2_rotation"] = p.input_sets;
  state.counters["batch"] = p.batch;
  state.counters["verify_rel_err"] = p.verify_rel_err;
  std::vector<unsigned> sm_clocks;
  std::vector<EnergySample> energy;
  std::uint64_t reasons = 0;
  for (const BatchSample& s : samples) {
    if (s.sm_clock_mhz) sm_clocks.push_back(*s.sm_clock_mhz);
    if (s.energy) energy.push_back(*s.energy);
    reasons |= s.reasons;
  }
  const ClockAssessment clocks = assess_clocks(sm_clocks, reasons, h.peaks.peak_clock_mhz);
  if (h.nvml_device && clocks.median_sm_clock_mhz) {
    state.counters["throttled"] = clocks.throttled ? 1 : 0;
    state.counters["power_capped"] = clocks.power_capped ? 1 : 0;
    if (clocks.clock_ratio) state.counters["clock_ratio"] = *clocks.clock_ratio;
    state.counters["sm_clock_mhz"] = *clocks.median_sm_clock_mhz;
    state.counters["throttle_reasons"] = static_cast<double>(reasons);
  }
  // Left out when the span was too short for the counter to advance twice (see assess_energy).
  if (const auto e = assess_energy(energy, spec.flops)) {
    state.counters["watts"] = e->watts;
    state.counters["joules"] = e->joules;
    if (e->tflop_per_joule > 0) state.counters["tflop_per_joule"] = e->tflop_per_joule;
  }
  std::string label = spec.label;
  const std::string chosen = p.workload->describe();
  if (!chosen.empty()) label += (label.empty() ? "" : "; ") + chosen;
  if (!p.blocked) label += (label.empty() ? "" : "; ") + ("timed without the blocking kernel: " + p.unblocked_why);
  if (!label.empty()) state.SetLabel(label);
}

}  // namespace wflops
