// MoE layer benchmarks (moe_step): a whole fine-grained MoE layer's training step (router,
// routing, permutation, expert MLPs, combine, and their backward) in bf16, across granularity G,
// so that tau(G) shows what many small experts cost beyond their FLOPs. tau counts the expert
// weight FLOPs only (6 * 8d^2 * T, what the planner divides by); the c_r routing FLOPs are the
// counter routing_flops. Each step is read against the dense MLP step with the same active weights
// (d -> 4d -> d), registered by the MLP family (pct_baseline).
#include "moe_bench.hpp"

#include <fmt/core.h>

#include "bench_families.hpp"
#include "cuda/moe_layer.hpp"
#include "model/flops.hpp"

namespace wflops {

namespace {

const std::vector<long> kGranularities = {1, 2, 4, 8, 16, 32, 64};

void add_moe(Registry& r, const MoeConfig& c, std::set<std::string> suites) {
  // A configuration the workload refuses (e.g. 4d/G not a multiple of 8) is never registered.
  if (!moe_unsupported_reason(c).empty()) return;
  BenchSpec spec("moe_step", moe_gemm_impl_name(c.impl), DType::bf16, moe_shape(c));
  spec.flops = flops::moe_expert_weight_flops(c.d, c.tokens);
  spec.bytes = flops::moe_step_bytes(c.d, c.experts, c.granularity, c.tokens, dtype_bytes(DType::bf16));
  spec.counters["routing_flops"] = flops::moe_routing_flops(c.d, c.experts, c.granularity, c.tokens);
  // The memory-bound parts of the time split (src/cuda/moe_layer.cpp's marks) and their least
  // bytes: the harness reports their bandwidth as phase_gbps_<part>. (permute also sorts: no figure.)
  const double e = dtype_bytes(DType::bf16);
  const double combine = flops::moe_combine_bytes(c.d, c.granularity, c.tokens, e);
  spec.counters[std::string(kPhaseBytesPrefix) + "combine"] = combine;
  spec.counters[std::string(kPhaseBytesPrefix) + "combine_bwd"] =
      flops::moe_combine_backward_bytes(c.d, c.granularity, c.tokens, e);
  spec.counters[std::string(kPhaseBytesPrefix) + "permute_bwd"] = combine;
  spec.baseline = add_dense_mlp_baseline(r, DType::bf16, c.d, 4 * c.d, c.tokens, suites);
  spec.label = fmt::format("{} experts of hidden {} ({} routing, {} expert GEMMs)", c.experts * c.granularity,
                           4 * c.d / c.granularity, moe::routing_name(c.routing), spec.impl);
  spec.suites = std::move(suites);
  spec.make = [c] { return make_moe_workload(c); };
  r.add(std::move(spec));
}

}  // namespace

MoeConfig moe_config(long d, long experts, long granularity, long tokens, moe::Routing routing, MoeGemmImpl impl) {
  MoeConfig c;
  c.d = d;
  c.experts = experts;
  c.granularity = granularity;
  c.tokens = tokens;
  c.routing = routing;
  c.impl = impl;
  return c;
}

void add_moe_benchmarks(Registry& r) {
  using moe::Routing;
  // The quick suite: the MoE performance targets of docs/moe.md (d = 2048, E = 64, 32k tokens, G = 1 and 8).
  for (long g : {1L, 8L}) {
    add_moe(r, moe_config(2048, 64, g, 32768, Routing::expert_choice, MoeGemmImpl::grouped), {"quick", "moe"});
  }
  // Our own grouped GEMM (kernels/moe/moe_grouped_gemm.cu) beside it at G = 8.
  add_moe(r, moe_config(2048, 64, 8, 32768, Routing::expert_choice, MoeGemmImpl::ours), {"quick", "moe", "full"});
  // The granularity sweep, expert choice with grouped GEMMs.
  for (long d : {768L, 2048L, 4096L}) {
    for (long e : {8L, 16L, 64L}) {
      std::vector<long> token_counts = {8192, 32768};
      if (d == 2048 && e == 64) token_counts.push_back(65536);
      for (long tokens : token_counts) {
        for (long g : kGranularities) {
          add_moe(r, moe_config(d, e, g, tokens, Routing::expert_choice, MoeGemmImpl::grouped), {"moe"});
        }
      }
    }
  }
  // The implementations side by side, and token choice, at the reference shape (d = 2048, E = 64, 32k tokens).
  for (long g : kGranularities) {
    for (MoeGemmImpl impl : {MoeGemmImpl::loop, MoeGemmImpl::padded}) {
      add_moe(r, moe_config(2048, 64, g, 32768, Routing::expert_choice, impl), {"moe"});
    }
    for (MoeGemmImpl impl : {MoeGemmImpl::grouped, MoeGemmImpl::loop}) {
      add_moe(r, moe_config(2048, 64, g, 32768, Routing::token_choice, impl), {"moe"});
    }
    // Our grouped GEMM reads the expert offsets on the device: token choice without a host sync.
    for (Routing routing : {Routing::expert_choice, Routing::token_choice}) {
      if (g != 8 || routing != Routing::expert_choice) {  // G = 8 expert choice: registered above
        add_moe(r, moe_config(2048, 64, g, 32768, routing, MoeGemmImpl::ours), {"moe", "full"});
      }
    }
  }
}

}  // namespace wflops
