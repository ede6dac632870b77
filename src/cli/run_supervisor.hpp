// The parent process of `wflops run`. It owns the result file and runs the benchmarks in worker
// processes (the same program, run_worker.hpp), so that a fault that takes a process down (a
// signal, an abort, a CUDA context left unusable by a sticky error) costs one benchmark, not the
// run: the benchmark gets that error in the file and a fresh worker goes on with the rest, appending
// to the same file. SIGINT and SIGTERM are passed on to the worker; the file then keeps every
// finished benchmark and says interrupted: true.
#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "cli/run_options.hpp"

namespace wflops::cli {

// Runs the benchmarks of `o` into `path` (which already holds the run's context) and ends the run:
// the summary lines on stdout, interrupted: false in the file. Returns the program's exit code.
// `planned`: the benchmarks of the run in order with their estimated seconds (run_progress.hpp),
// for the "[i/N]" of the rows this process prints itself.
int supervise_run(const RunOptions& o, const std::filesystem::path& path,
                  const std::vector<std::pair<std::string, double>>& planned);

}  // namespace wflops::cli
