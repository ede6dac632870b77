#include "reference/verify_error.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace wflops {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
}  // namespace

void ErrorSum::add(double got, double ref) {
  ++count_;
  if (!std::isfinite(got) || !std::isfinite(ref)) {
    // Kept out of the sums: a NaN there would hide every other value's error.
    ++nonfinite_;
    return;
  }
  const double e = got - ref;
  err2_ += e * e;
  ref2_ += ref * ref;
  max_abs_ = std::max(max_abs_, std::fabs(e));
}

void ErrorSum::add(const std::vector<double>& got, const std::vector<double>& ref) {
  const std::size_t n = std::min(got.size(), ref.size());
  for (std::size_t i = 0; i < n; ++i) add(got[i], ref[i]);
  const std::size_t unmatched = std::max(got.size(), ref.size()) - n;
  count_ += unmatched;
  nonfinite_ += unmatched;
}

void ErrorSum::add(const ErrorSum& other) {
  count_ += other.count_;
  nonfinite_ += other.nonfinite_;
  err2_ += other.err2_;
  ref2_ += other.ref2_;
  max_abs_ = std::max(max_abs_, other.max_abs_);
}

double ErrorSum::relative() const {
  if (count_ == 0 || nonfinite_ > 0) return kInf;
  if (ref2_ == 0) return err2_ == 0 ? 0.0 : kInf;
  const double r = std::sqrt(err2_ / ref2_);
  // Sums past the double range (err2 and ref2 both +inf) must not read as a number.
  return std::isnan(r) ? kInf : r;
}

double relative_error(const std::vector<double>& got, const std::vector<double>& ref) {
  return ErrorSum(got, ref).relative();
}

void ErrorReport::add(std::string name, const ErrorSum& error, double tolerance) {
  entries_.push_back({std::move(name), error.relative(), tolerance});
}

bool ErrorReport::ok() const {
  return !entries_.empty() &&
         std::all_of(entries_.begin(), entries_.end(), [](const Entry& e) { return e.relative < e.tolerance; });
}

double ErrorReport::worst() const {
  double w = 0;
  for (const Entry& e : entries_) w = std::max(w, e.relative);
  return w;
}

double ErrorReport::tolerance() const {
  double t = 0;
  for (const Entry& e : entries_) t = t == 0 ? e.tolerance : std::min(t, e.tolerance);
  return t;
}

std::string ErrorReport::detail(const std::string& what) const {
  std::string parts;
  for (const Entry& e : entries_) {
    const bool pass = e.relative < e.tolerance;
    parts += fmt::format("{}{} {:.3g}{}", parts.empty() ? "" : ", ", e.name, e.relative,
                         pass ? "" : fmt::format(" (FAILS, tolerance {:.0e})", e.tolerance));
  }
  return fmt::format("relative errors: {}; {}", parts, what);
}

}  // namespace wflops
