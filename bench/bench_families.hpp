// One function per benchmark family; register_all_benchmarks() (all_benchmarks.hpp) calls them
// all, in this order (Google Benchmark runs them in registration order, so a baseline runs before
// what is read against it: matmuls first, then MLP steps, casts, attention, MoE and last the whole
// model step, which `wflops breakdown` reads against all of those).
#pragma once
#include <set>
#include <string>

#include "registry.hpp"

namespace wflops {
void add_matmul_benchmarks(Registry& r);     // matmul_bench.cpp
void add_mlp_benchmarks(Registry& r);        // mlp_bench.cpp: mlp_step, mlp_fwd
void add_attention_benchmarks(Registry& r);  // attention_bench.cpp: attention_fwd, attention_bwd
void add_moe_benchmarks(Registry& r);        // moe_bench.cpp: moe_step and its stages

// cast_bench.cpp: mixed precision's per-step conversions (fp32 master weights to bf16/fp16 and
// back) and a device-to-device copy of the same size, the bandwidth they are read against:
// cast/d2d_copy/fp32/n:<n>, then cast/vec16/<in>_<out>/n:<n> with the copy as baseline, for
// n = 2^24, 2^26, 2^28. Memory-bound: flops = 0, bytes from the FLOP model.
void add_cast_benchmarks(Registry& r);

// model_bench.cpp: model_step, the whole GPT-2 training step, eager and fused (docs/model.md).
void add_model_benchmarks(Registry& r);

// The dense MLP training step (d -> d_ff -> d, bias + GELU, the fused cuBLASLt-epilogue
// implementation) that other families read themselves against (an MoE layer with the same active
// weights). Registers it (or adds `suites` to it) and returns its benchmark name, for
// BenchSpec::baseline. Defined in mlp_bench.cpp.
std::string add_dense_mlp_baseline(Registry& r, DType dtype, long d, long d_ff, long tokens,
                                   const std::set<std::string>& suites);
}  // namespace wflops
