// How every check in wflops measures a result against its reference: one accumulator of the
// error, one reading of it (the relative error in the 2-norm, ||got - ref|| / ||ref||) and one way
// to state a set of named comparisons as a verdict and a line of text. Workloads (src/cuda/) and
// tests gather values into it from wherever they sample them (rows, slices, experts); only then is
// the ratio taken, so a part is judged as a whole, not element by element.
//
// The meaning, the same everywhere:
//  - a value that is not finite (got or ref NaN or Inf) makes the relative error +inf, so the
//    comparison fails whatever the tolerance;
//  - an all-zero reference (||ref|| = 0) has no scale: the relative error is 0 when got equals it
//    exactly and +inf otherwise, so an output that must be zero (a gradient no token reaches) has
//    to be exactly zero;
//  - comparing nothing checks nothing: with no value compared the relative error is +inf.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace wflops {

class ErrorSum {
 public:
  ErrorSum() = default;
  // The elements of two vectors, as add(got, ref) below.
  ErrorSum(const std::vector<double>& got, const std::vector<double>& ref) { add(got, ref); }

  void add(double got, double ref);
  // Element by element; a length mismatch counts each unmatched element as not finite (a caller's
  // slip must fail the check, not shorten it).
  void add(const std::vector<double>& got, const std::vector<double>& ref);
  // Another sum's values, as if they had been added here.
  void add(const ErrorSum& other);

  std::size_t count() const { return count_; }          // values compared, non-finite ones included
  std::size_t nonfinite() const { return nonfinite_; }  // of those, where got or ref was NaN or Inf
  double err2() const { return err2_; }                 // sum of (got - ref)^2 over the finite ones
  double ref2() const { return ref2_; }                 // sum of ref^2 over the finite ones
  double max_abs() const { return max_abs_; }           // the largest |got - ref| among them

  // ||got - ref|| / ||ref|| under the rules above.
  double relative() const;
  // relative() < tolerance: false for a non-finite value, for any error against an all-zero
  // reference and for an empty sum.
  bool within(double tolerance) const { return relative() < tolerance; }

 private:
  std::size_t count_ = 0, nonfinite_ = 0;
  double err2_ = 0, ref2_ = 0, max_abs_ = 0;
};

// The relative error of two whole vectors: ErrorSum::relative() of their elements.
double relative_error(const std::vector<double>& got, const std::vector<double>& ref);

// Named comparisons, each against its own tolerance, read as one verdict. A Verification (the
// harness's, src/cuda/harness.hpp) takes ok(), worst(), tolerance() and detail() as they are.
class ErrorReport {
 public:
  void add(std::string name, const ErrorSum& error, double tolerance);

  // At least one comparison, and every one within its tolerance.
  bool ok() const;
  // The largest relative error (+inf when one is not finite); 0 with no comparison.
  double worst() const;
  // The strictest tolerance in use; 0 with no comparison.
  double tolerance() const;
  // "relative errors: y 0.00123, dx 0.0456 (FAILS, tolerance 1e-02); <what>": every comparison
  // in order, each failing one with its tolerance, then what was compared.
  std::string detail(const std::string& what) const;

 private:
  struct Entry {
    std::string name;
    double relative;
    double tolerance;
  };
  std::vector<Entry> entries_;
};

}  // namespace wflops
