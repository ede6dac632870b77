// Every benchmark `wflops list` would show, registered once per test program, and a lookup by name:
// for the tests that check what the families register (names, suites, baselines, FLOP counts).
#pragma once
#include <string>

#include "all_benchmarks.hpp"

namespace wflops::testing {

inline const Registry& registered_benchmarks() {
  static const Registry r = [] {
    Registry x;
    register_all_benchmarks(x);
    return x;
  }();
  return r;
}

// nullptr when no benchmark has that name.
inline const BenchSpec* find_registered(const std::string& name) {
  for (const BenchSpec& s : registered_benchmarks().all()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

}  // namespace wflops::testing
