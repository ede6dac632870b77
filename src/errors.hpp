// Errors that reach the user as one clear line and a non-zero exit code.
#pragma once
#include <stdexcept>
#include <string>

namespace wflops {

// Exit codes of the `wflops` program.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // bad arguments, bad input files, failed benchmarks
inline constexpr int kExitNoGpu = 2;  // `run` without a usable GPU
inline constexpr int kExitInterrupted = 130;

// A mistake the user can fix (bad argument, unreadable file, malformed JSON, ...).
class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace wflops
