// The options of `wflops run`, shared by the argument checks, the parent process that owns the run
// and its worker processes (run_supervisor.cpp, run_worker.cpp).
#pragma once
#include <set>
#include <string>
#include <vector>

namespace wflops::cli {

struct RunOptions {
  std::string suite = "quick";
  std::string out;
  std::string results_dir = "results";
  std::vector<std::string> peaks;
  int device = 0;
  std::vector<std::string> benchmark_flags;
  // Set only by the parent `wflops run` when it starts a worker: the pipe the worker reports its
  // progress on, and the result file it goes on with.
  int worker_fd = -1;
  std::string worker_file;
};

// Exit code of a worker that stopped because the CUDA context became unusable (a sticky error):
// its benchmark's error is in the file, and the parent goes on in a fresh process.
inline constexpr int kExitContextLost = 3;

// The Google Benchmark flags a run gets: the suite's defaults (repetitions give the median and
// spread of every result), then the user's own --benchmark_* flags, which therefore win.
std::vector<std::string> benchmark_arguments(const RunOptions& o);

// Every argument that can be checked without a GPU, checked before looking for one (so bad input
// says what is wrong, exit code 1, rather than "no usable GPU"). Throws UserError naming the flag.
void check_run_arguments(const RunOptions& o, const std::set<std::string>& suites, const std::string& suite_list);

}  // namespace wflops::cli
