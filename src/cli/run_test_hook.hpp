// TEST ONLY: fake benchmarks that let the CPU tests drive `wflops run`'s worker processes without a
// GPU. Nothing here runs unless the environment variable WFLOPS_TEST_FAKE_RUN is set; a user never
// sets it. Its value is a comma-separated list:
//   count=N         N fake CPU-only benchmarks, "fake/cpu/fp32/i:0" ... "fake/cpu/fp32/i:N-1"
//   segv=I          benchmark I raises SIGSEGV (the worker dies by a signal, as a wild pointer would)
//   abort=I         benchmark I calls abort() (as an uncaught exception or a failed assertion would)
//   sticky=I        benchmark I reports an error and the context check then says the CUDA context
//                   is unusable, as after cudaErrorIllegalAddress
//   exitsegv=I      benchmark I runs, and the process raises SIGSEGV as it exits (after its last
//                   benchmark), as a library's exit handler might on a broken context
//   term=I          benchmark I sends SIGTERM to the parent `wflops run` and waits to be stopped,
//                   as a scheduler's SIGTERM would arrive mid-benchmark
// Each fault fires in the first process that runs that benchmark. With the hook set, `wflops run`
// skips the GPU check and records a fake device.
#pragma once
#include <benchmark/benchmark.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "device_description.hpp"
#include "model/peaks.hpp"
#include "registry.hpp"

namespace wflops::cli {

struct FakeRun {
  int count = 0;
  std::map<int, std::string> faults;  // benchmark index -> "segv", "abort", "sticky", "exitsegv", "term"
};

// The hook's settings when WFLOPS_TEST_FAKE_RUN is set; nullopt otherwise. Throws UserError when
// the value is malformed.
std::optional<FakeRun> fake_run_from_env();

// The fake benchmarks (CPU only), and the body that runs one in place of the harness: it commits
// the fault asked for.
std::vector<BenchSpec> fake_benchmarks(const FakeRun& run);
void run_fake_benchmark(benchmark::State& state, const FakeRun& run, const BenchSpec& spec);

// The device and peaks a fake run records in its context.
DeviceDescription fake_device();
Peaks fake_peaks();

// What the context check says in a fake run: "" until a "sticky" benchmark ran in this process.
std::string fake_context_lost();

}  // namespace wflops::cli
