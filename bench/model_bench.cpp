// The whole decoder-only LM training step (model_step, docs/model.md): forward, backward and AdamW
// in mixed precision, eager and fused, in bf16 and fp16, at the reference article's HF GPT-2
// (d 1600, 8 layers, 25 heads, 32 x 256 tokens) and at GPT-2 small (d 768, 12 layers, 12 heads,
// 16 x 1024). Registered last: a step is read against the matmuls, MLP steps and attention rows of
// the same run (`wflops breakdown`), and its fused implementation against its eager one
// (pct_baseline). Llama-3-8B's block and head (flops::llama3_8b_block_shape: d 4096, 32 heads over 8
// K/V heads, d_ff 14336, V 128256, 2 layers) at 1 x 4096 and 2 x 4096 tokens.
#include <fmt/core.h>

#include <set>
#include <stdexcept>
#include <string>

#include "bench_families.hpp"
#include "cuda/model_step.hpp"
#include "model/flops_model.hpp"
#include "model/flops_model_phases.hpp"
#include "model/model_bytes.hpp"
#include "model/model_phases.hpp"

namespace wflops {

namespace {

std::string describe(const std::string& impl, const flops::ModelStepShape& m) {
  if (impl == "eager")
    return "eager: cuBLAS GEMMs and one of our kernels per elementwise operation, in PyTorch's order";
  if (m.arch == flops::ModelArch::llama) {
    return "fused: fused residual + RMSNorm, SwiGLU kernel, fused attention on K/V expanded to the query heads, "
           "fused softmax + cross-entropy, one multi-tensor AdamW";
  }
  return "fused: cuBLASLt epilogues, fused residual + LayerNorm, fused attention, fused softmax + cross-entropy, "
         "one multi-tensor AdamW";
}

std::string add_model_step(Registry& r, const std::string& what, const flops::ModelStepShape& m, DType dtype,
                           const std::string& impl, const std::set<std::string>& suites) {
  const std::string dt(dtype_name(dtype));
  const std::string name = model_phases::model_step_name(impl, dt, m);
  // model_step_name spells the whole name; the spec takes what follows family/impl/dtype/.
  const std::string head = benchmark_name(model_phases::kFamily, impl, dt, "");
  if (name.compare(0, head.size(), head) != 0) throw std::logic_error("model_step_name changed its format: " + name);
  BenchSpec spec(model_phases::kFamily, impl, dtype, name.substr(head.size()));
  spec.flops = flops::model_step_weight_flops(m);  // the family's tau: 6 N_w T
  spec.bytes = 0;  // a step's least traffic is not one figure: phase_bytes_<phase> per memory-bound phase
  spec.counters[model_phases::kAttnFlops] = flops::model_step_attention_flops(m);
  spec.counters[model_phases::kModelFlops] = flops::model_step_model_flops(m);
  for (const model_phases::Phase& p : model_phases::phases()) {
    const bool backward = p.direction == model_phases::Direction::bwd;
    if (p.kind == model_phases::Kind::gemm) {
      spec.counters[model_phases::kFlops + p.name] = flops::model_phase_weight_flops(m, p.component, backward);
    } else if (p.kind == model_phases::Kind::attention) {
      spec.counters[model_phases::kFlops + p.name] = flops::model_phase_attention_flops(m, backward);
    }
  }
  const double elem = static_cast<double>(dtype_bytes(dtype));
  for (const auto& [phase, bytes] : flops::model_phase_bytes(m, elem, impl == "fused")) {
    spec.counters[model_phases::kBytes + phase] = bytes;
  }
  spec.suites = suites;
  spec.label = fmt::format("{}, {:.1f} M weights N_w (blocks + {} LM head), tau = 6 N_w T; {}", what,
                           flops::model_weights(m) / 1e6, m.untied ? "untied" : "tied", describe(impl, m));
  if (impl == "fused") spec.baseline = model_phases::model_step_name("eager", dt, m);
  const ModelStepConfig config{impl, dtype, m};
  // The device memory it needs, as the attention rows give theirs (known without a GPU).
  spec.counters["mem_bytes"] = model_step_memory_bytes(config);
  spec.make = [config] { return make_model_step_workload(config); };
  return r.add(std::move(spec));
}

}  // namespace

void add_model_benchmarks(Registry& r) {
  struct Configuration {
    const char* what;
    flops::ModelStepShape shape;
    bool quick;  // its bf16 steps in the quick suite
  };
  const Configuration configurations[] = {
      {"GPT-2 as the reference article's HF GPT-2 (d 1600, 8 layers, 25 heads, 32 x 256 tokens)",
       flops::gpt2_reference_shape(), true},
      {"GPT-2 small (d 768, 12 layers, 12 heads, 16 x 1024 tokens)", flops::gpt2_small_shape(), false},
  };
  for (const Configuration& c : configurations) {
    for (DType dtype : {DType::bf16, DType::fp16}) {
      std::set<std::string> suites = {"model"};
      if (c.quick && dtype == DType::bf16) suites.insert("quick");
      // Eager first: the fused step's baseline.
      for (const char* impl : {"eager", "fused"}) add_model_step(r, c.what, c.shape, dtype, impl, suites);
    }
  }
  // After GPT-2: its rows keep their places.
  flops::ModelStepShape llama2 = flops::llama3_8b_block_shape();
  llama2.batch = 2;
  const Configuration llama[] = {
      {"Llama-3-8B's block and head (d 4096, 2 layers, 32 heads, 8 K/V heads, d_ff 14336, 1 x 4096 tokens)",
       flops::llama3_8b_block_shape(), false},
      {"Llama-3-8B's block and head (d 4096, 2 layers, 32 heads, 8 K/V heads, d_ff 14336, 2 x 4096 tokens)", llama2,
       false},
  };
  for (const Configuration& c : llama) {
    for (DType dtype : {DType::bf16, DType::fp16}) {
      for (const char* impl : {"eager", "fused"}) add_model_step(r, c.what, c.shape, dtype, impl, {"model"});
    }
  }
}

}  // namespace wflops
