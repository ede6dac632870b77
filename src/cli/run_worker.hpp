// The worker process of `wflops run`: the parent (run_supervisor.hpp) starts it as
// `wflops run ... --worker-fd FD --worker-file FILE`; it runs every benchmark of the run that FILE
// does not hold yet, appending to FILE, and reports on the pipe FD, one line each:
//   begin NAME          benchmark NAME starts (its first repetition)
//   end NAME            NAME's runs (its repetitions and their aggregates) are in the file
//   throttled N         N of the benchmarks this process ran so far were throttled
//   lost NAME<TAB>WHY   after NAME the CUDA context is unusable (a sticky error); exit kExitContextLost
//   done N              every benchmark is settled; N of them ran in this process; exit 0
#pragma once
#include "cli/run_options.hpp"

namespace wflops::cli {

int run_worker(const RunOptions& o);

}  // namespace wflops::cli
