// What `wflops breakdown` reads a model step against (docs/model.md "Reading the breakdown"): the
// forward matmul of each weight matrix, the attention rows of the step's b/h/s/head size, the MLP
// step of its d/d_ff/tokens, and the matmul and device copy of the "% ceil" column. Each family
// registers its own parts with the functions below, so a part that a family already has only
// gains the suites (Registry::add); a part whose implementation would refuse the shape is left
// out, so a listing shows no row that cannot run.
#pragma once
#include <set>
#include <string>

#include "dtype.hpp"
#include "model/flops_model.hpp"
#include "registry.hpp"

namespace wflops {

// Every part of `step` (a registered model step) into `suites`; a step whose name does not parse
// as a model step adds nothing. Defined in model_parts.cpp; register_all_benchmarks calls it
// before it registers the steps themselves (registration order is run order).
void add_model_step_parts(Registry& r, const BenchSpec& step, const std::set<std::string>& suites);

// matmul_bench.cpp: the autotuned cuBLASLt GEMM of each weight matrix's forward at m = the step's
// tokens (flops::model_gemms: n = out, k = in; the LM head with the real vocabulary), then the
// 8192^3 one of the dtype, the ceiling the step and its GEMM phases are read against.
void add_model_matmuls(Registry& r, const flops::ModelStepShape& m, DType dtype, const std::set<std::string>& suites);

// attention_bench.cpp: attention_fwd and attention_bwd of one shape, every implementation, as the
// attention family registers each of its shapes (unfused, then fused read against it, then cuDNN
// read against fused).
void add_attention_shape(Registry& r, DType dtype, long batch, long heads, long seq, long head_dim, bool causal,
                         const std::set<std::string>& suites);

// mlp_bench.cpp: the mlp_step `word` at (d, d_ff, tokens) after the linear step it is read
// against (pct_baseline). Returns its name, "" when the MLP step refuses the case.
std::string add_mlp_step_with_baseline(Registry& r, const std::string& word, DType dtype, long d, long d_ff,
                                       long tokens, const std::set<std::string>& suites, const std::string& label);

// cast_bench.cpp: the largest device copy, the bandwidth ceiling of memory-bound phases. Returns its
// name.
std::string add_copy_ceiling(Registry& r, const std::set<std::string>& suites);

}  // namespace wflops
