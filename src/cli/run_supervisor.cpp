#include "cli/run_supervisor.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <vector>

#include "errors.hpp"
#include "results/result_file.hpp"
#include "results/result_reporter.hpp"
#include "run_progress.hpp"

namespace wflops::cli {

namespace {

volatile std::sig_atomic_t g_worker = 0;  // pid of the running worker, 0 when none
volatile std::sig_atomic_t g_signal = 0;  // SIGINT or SIGTERM received

// Passes the signal on to the worker (async-signal-safe: kill only). A second one stops the worker
// at once, whatever it is doing.
void on_signal(int sig) {
  const bool again = g_signal != 0;
  g_signal = sig;
  const pid_t worker = static_cast<pid_t>(g_worker);
  if (worker > 0) kill(worker, again ? SIGKILL : sig);
}

struct Worker {
  std::string current;        // the benchmark it began last
  bool in_benchmark = false;  // `current` began and has not reported yet
  int started = 0;            // benchmarks it began
  int throttled = 0;
  std::string lost;  // why the CUDA context became unusable, after `current`
  bool done = false;
  int status = 0;  // from waitpid
};

void handle_line(const std::string& line, Worker& w) {
  const auto space = line.find(' ');
  const std::string word = line.substr(0, space);
  const std::string rest = space == std::string::npos ? "" : line.substr(space + 1);
  if (word == "begin") {
    w.current = rest;
    w.in_benchmark = true;
    ++w.started;
  } else if (word == "end") {
    w.in_benchmark = false;
  } else if (word == "throttled") {
    w.throttled = std::atoi(rest.c_str());
  } else if (word == "lost") {
    const auto tab = rest.find('\t');
    w.current = rest.substr(0, tab);
    w.lost = tab == std::string::npos ? "unknown error" : rest.substr(tab + 1);
  } else if (word == "done") {
    w.done = true;
  }
}

std::vector<std::string> worker_arguments(const RunOptions& o, int fd, const std::filesystem::path& path) {
  std::vector<std::string> args = {"wflops", "run", "--suite", o.suite, "--device", std::to_string(o.device)};
  for (const std::string& p : o.peaks) args.insert(args.end(), {"--peak", p});
  args.insert(args.end(), {"--worker-fd", std::to_string(fd), "--worker-file", path.string()});
  args.insert(args.end(), o.benchmark_flags.begin(), o.benchmark_flags.end());
  return args;
}

// Starts a worker (this program again, from /proc/self/exe, so the same build runs), reads its
// progress until it ends and waits for it.
Worker run_worker_process(const RunOptions& o, const std::filesystem::path& path) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
  std::vector<std::string> args = worker_arguments(o, fds[1], path);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec. The write end stays open across exec.
    fcntl(fds[1], F_SETFD, 0);
    execv("/proc/self/exe", argv.data());
    const char msg[] = "wflops: error: cannot start the benchmark process (/proc/self/exe)\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    _exit(127);
  }
  g_worker = pid;
  ::close(fds[1]);
  if (g_signal) kill(pid, g_signal);  // a signal that came while the worker was being started

  Worker w;
  std::string pending;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the worker ended (or closed the pipe)
    pending.append(buf, static_cast<std::size_t>(n));
    for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
      handle_line(pending.substr(0, nl), w);
      pending.erase(0, nl + 1);
    }
  }
  ::close(fds[0]);
  while (waitpid(pid, &w.status, 0) < 0 && errno == EINTR) {
  }
  g_worker = 0;
  return w;
}

std::string how_it_ended(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return fmt::format("signal {} ({})", sig, strsignal(sig));
  }
  return fmt::format("exit code {}", WEXITSTATUS(status));
}

// SIGINT/SIGTERM, whether the parent saw it (and passed it on) or only the worker did.
int stop_signal(const Worker& w) {
  if (g_signal) return g_signal;
  if (WIFSIGNALED(w.status) && (WTERMSIG(w.status) == SIGINT || WTERMSIG(w.status) == SIGTERM)) {
    return WTERMSIG(w.status);
  }
  return 0;
}

class SignalForwarding {
 public:
  SignalForwarding() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~SignalForwarding() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// Distinct benchmarks with an error, over the whole file (every worker's, and the parent's own).
int count_errors(const nlohmann::json& doc) {
  std::set<std::string> failed;
  for (const auto& b : doc["benchmarks"]) {
    if (b.value("error_occurred", false)) failed.insert(b.value("run_name", b.value("name", "")));
  }
  return static_cast<int>(failed.size());
}

}  // namespace

int supervise_run(const RunOptions& o, const std::filesystem::path& path,
                  const std::vector<std::pair<std::string, double>>& planned) {
  int started = 0, throttled = 0;
  {
    SignalForwarding forwarding;
    for (;;) {
      if (g_signal) break;
      const Worker w = run_worker_process(o, path);
      started += w.started;
      throttled += w.throttled;
      if (const int sig = stop_signal(w)) {
        g_signal = sig;
        break;
      }
      const bool clean = WIFEXITED(w.status) && WEXITSTATUS(w.status) == kExitOk;
      if (w.done) {
        // Every benchmark is settled; a crash on the way out (freeing, exit handlers) costs none.
        if (!clean) {
          fmt::print(stderr, "wflops: warning: the benchmark process ended with {} after its last benchmark\n",
                     how_it_ended(w.status));
        }
        break;
      }
      if (WIFEXITED(w.status) && WEXITSTATUS(w.status) == kExitContextLost && !w.lost.empty()) {
        fmt::print(stderr,
                   "wflops: {} left the CUDA context unusable ({}); the remaining benchmarks run in a "
                   "fresh process\n",
                   w.current, w.lost);
        continue;
      }
      if (w.started == 0) {
        // Nothing was settled, so a new worker would fail the same way: the run ends here.
        throw UserError(
            fmt::format("the benchmark process ended ({}) before it began a benchmark; {} keeps "
                        "what finished (interrupted: true)",
                        how_it_ended(w.status), path.string()));
      }
      if (!w.in_benchmark) {
        // It died between benchmarks: what it began is in the file; a fresh worker goes on.
        fmt::print(stderr,
                   "wflops: the benchmark process died after {} ({}); the remaining benchmarks run in a "
                   "fresh process\n",
                   w.current, how_it_ended(w.status));
        continue;
      }
      const std::string why = "the benchmark process died while it ran: " + how_it_ended(w.status);
      nlohmann::json doc = read_result_document(path);
      record_benchmark_error(doc, w.current, why);
      write_result_document(path, doc);
      std::error_code ec;
      std::filesystem::remove(path.string() + ".tmp", ec);  // the dead worker's, if it died writing
      // The row the worker could not print, in the table's own error form.
      RunProgress progress(planned, benchmark_run_names(doc), false);
      fmt::print("{}{:<64} ERROR: {}\n", progress.row(w.current).first, w.current, why);
      std::fflush(stdout);
      fmt::print(stderr, "wflops: {}: {}; the remaining benchmarks run in a fresh process\n", w.current, why);
    }
  }
  if (g_signal) {
    fmt::print(stderr, "\nwflops: interrupted; {} keeps every finished benchmark (interrupted: true)\n", path.string());
    return 128 + g_signal;
  }
  if (started == 0) {
    std::filesystem::remove(path);  // ours, created for this run and holding no result
    throw UserError(fmt::format("no benchmark of suite '{}' matches the --benchmark_filter given", o.suite));
  }

  // Every benchmark is settled: the run is complete.
  nlohmann::json doc = read_result_document(path);
  doc["context"]["interrupted"] = false;
  doc["summary"] = result_summary(doc["benchmarks"]);
  write_result_document(path, doc);

  if (doc["summary"].contains("matmul_max_tflops")) {
    for (const auto& [dtype, best] : doc["summary"]["matmul_max_tflops"].items()) {
      fmt::print("best {} matmul: {:.1f} TFLOP/s ({})\n", dtype, best["tflops"].get<double>(),
                 best["benchmark"].get<std::string>());
    }
  }
  if (throttled) {
    fmt::print("{} benchmark(s) ran while the GPU was throttled (marked THROTTLED, counter throttled = 1)\n",
               throttled);
  }
  fmt::print("results written to {}\n", path.string());
  if (const int errors = count_errors(doc)) {
    fmt::print(stderr, "wflops: {} benchmark(s) reported an error (see the table and the result file)\n", errors);
    return kExitError;
  }
  return kExitOk;
}

}  // namespace wflops::cli
