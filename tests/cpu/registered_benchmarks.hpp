// Every benchmark `wflops list` would show, registered once per test program: for the tests that
// check what the families register (names, suites, baselines, FLOP counts).
#pragma once
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

}  // namespace wflops::testing
