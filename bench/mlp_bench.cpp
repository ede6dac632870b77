// PLACEHOLDER: replaced by the mlp family's registrations.
#include "bench_families.hpp"

namespace wflops {
void add_mlp_benchmarks(Registry&) {}
}  // namespace wflops
namespace wflops {
std::string add_dense_mlp_baseline(Registry&, DType, long, long, long, const std::set<std::string>&) { return ""; }
}  // namespace wflops
