// Helpers of the CPU tests that check a backward against central finite differences of the forward.
#pragma once

#include <cstddef>
#include <random>
#include <vector>

namespace wflops::test_support {

// (loss() at x[i] + h - loss() at x[i] - h) / 2h, with x[i] restored afterwards: the truncation error
// is of order h² and the rounding error of order 1e-16 / h.
template <class Loss>
double central_difference(const Loss& loss, std::vector<double>& x, std::size_t i, double h) {
  const double keep = x[i];
  x[i] = keep + h;
  const double up = loss();
  x[i] = keep - h;
  const double down = loss();
  x[i] = keep;
  return (up - down) / (2 * h);
}

// Vectors of U(-1, 1) draws from one seeded stream: random(n) gives the next n.
class UniformVectors {
 public:
  explicit UniformVectors(unsigned long seed) : rng_(seed) {}
  std::vector<double> operator()(std::size_t n) {
    std::vector<double> v(n);
    for (double& x : v) x = u_(rng_);
    return v;
  }

 private:
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> u_{-1, 1};
};

}  // namespace wflops::test_support
