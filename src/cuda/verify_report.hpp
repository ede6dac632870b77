// A workload's named comparisons (src/reference/verify_error.hpp) as the harness's Verification: the one
// way every check states its verdict, its worst relative error and what it compared.
#pragma once
#include <string>

#include "cuda/harness.hpp"
#include "reference/verify_error.hpp"

namespace wflops {

inline Verification verification_of(const ErrorReport& report, const std::string& what) {
  Verification v;
  v.ok = report.ok();
  v.rel_err = report.worst();
  v.tolerance = report.tolerance();
  v.detail = report.detail(what);
  return v;
}

}  // namespace wflops
