// Runs the built `wflops` program (WFLOPS_BINARY, set by CMake) as a user would, for the CLI tests.
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace wflops::testing {

struct ProgramRun {
  int code = -1;    // exit code; -1 when the program could not be started or did not exit
  std::string out;  // stdout, with stderr after it interleaved when asked for
};

inline ProgramRun run_wflops(const std::string& args, bool with_stderr = true) {
  const std::string cmd = std::string(WFLOPS_BINARY) + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  ProgramRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace wflops::testing
