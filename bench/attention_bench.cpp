// Attention benchmarks: forward and backward of unfused attention (cuBLAS + our softmax) and of
// our fused FlashAttention-2 kernel, and cuDNN's fused attention (the vendor reference),
// on the sweep public attention benchmarks use: 16384 tokens in total (batch = 16384 / seq),
// hidden 2048 as 32 heads of 64 or 16 heads of 128. FLOPs follow the public convention (forward
// 4 b h s^2 d, halved when causal; backward 2.5x forward); the implementation's actual matmul
// FLOPs are the counter matmul_flops, its device memory mem_bytes.
#include <fmt/core.h>

#include <vector>

#include "bench_families.hpp"
#include "cuda/attention_workload.hpp"
#include "model/flops.hpp"
#include "model_parts.hpp"

namespace wflops {

namespace {

std::string family(AttentionPass pass) { return pass == AttentionPass::forward ? "attention_fwd" : "attention_bwd"; }

// Returns the name, or "" (no row, and no baseline for the next) when the implementation refuses
// the case.
std::string add_attention(Registry& r, const AttentionCase& c, std::set<std::string> suites,
                          const std::string& baseline) {
  if (!attention_unsupported_reason(c).empty()) return "";
  const auto& d = c.dims;
  BenchSpec spec(family(c.pass), attention_impl_name(c.impl), c.dtype,
                 fmt::format("b:{}/h:{}/s:{}/d:{}/causal:{}", d.batch, d.heads, d.seq, d.head_dim, d.causal ? 1 : 0));
  const double b = static_cast<double>(d.batch), h = static_cast<double>(d.heads), s = static_cast<double>(d.seq),
               hd = static_cast<double>(d.head_dim), e = static_cast<double>(dtype_bytes(c.dtype));
  const bool fwd = c.pass == AttentionPass::forward;
  spec.flops = fwd ? flops::attention_forward(b, h, s, hd, d.causal) : flops::attention_backward(b, h, s, hd, d.causal);
  spec.bytes = fwd ? flops::attention_forward_bytes(b, h, s, hd, e) : flops::attention_backward_bytes(b, h, s, hd, e);
  spec.counters["attn_flops"] = spec.flops;  // attention FLOPs, not weight FLOPs
  spec.counters["matmul_flops"] = attention_matmul_flops(c);
  spec.counters["mem_bytes"] = attention_memory_bytes(c);
  spec.suites = std::move(suites);
  spec.label = fmt::format("{} h*d={}; FLOPs: {}", fwd ? "forward" : "backward alone", d.heads * d.head_dim,
                           fwd ? "4bhs^2d (causal half)" : "2.5x forward convention (incl. recompute)");
  spec.baseline = baseline;
  spec.make = [c] { return make_attention_workload(c); };
  return r.add(std::move(spec));
}

// Every implementation of one shape, forward and backward; the fused one is read against the
// unfused one, cuDNN's (forward and backward) against the fused one (pct_baseline = cuDNN τ as % of
// ours).
void add_shape(Registry& r, DType dtype, kernels::AttentionDims dims, const std::set<std::string>& suites) {
  for (AttentionPass pass : {AttentionPass::forward, AttentionPass::backward}) {
    const std::string unfused = add_attention(r, {AttentionImpl::unfused, pass, dtype, dims}, suites, "");
    const std::string fused = add_attention(r, {AttentionImpl::fused, pass, dtype, dims}, suites, unfused);
    add_attention(r, {AttentionImpl::cudnn, pass, dtype, dims}, suites, fused);
  }
}

}  // namespace

void add_attention_shape(Registry& r, DType dtype, long batch, long heads, long seq, long head_dim, bool causal,
                         const std::set<std::string>& suites) {
  add_shape(r, dtype, {batch, heads, seq, head_dim, causal}, suites);
}

void add_attention_benchmarks(Registry& r) {
  constexpr long kTokens = 16384;
  struct Heads {
    long heads, head_dim;
  };
  for (Heads hd : {Heads{32, 64}, Heads{16, 128}}) {
    for (long seq : {512L, 1024L, 2048L, 4096L, 8192L, 16384L}) {
      for (bool causal : {false, true}) {
        const kernels::AttentionDims dims{kTokens / seq, hd.heads, seq, hd.head_dim, causal};
        std::set<std::string> suites = {"attention", "full"};
        // The H100 target point (b=4, h=16, s=4096, d=128, not causal, bf16).
        if (hd.head_dim == 128 && seq == 4096 && !causal) suites.insert("quick");
        add_shape(r, DType::bf16, dims, suites);
        if (hd.head_dim == 128 && seq == 4096) add_shape(r, DType::fp16, dims, {"attention", "full"});
      }
    }
  }
}

}  // namespace wflops
