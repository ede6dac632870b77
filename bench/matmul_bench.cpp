// Matmul benchmarks: cuBLAS, cuBLASLt (heuristic and autotuned) and our WMMA kernel over dtypes,
// on a square sweep, the GEMMs of transformer layers, the reference 4096 x 8192 x 4096 problem,
// and a grid for the maximum-achievable search. fp8 runs through cuBLASLt with and without fast
// accumulation (frameworks use it for forward GEMMs, not for gradients: gemm.hpp), beside each
// other wherever fp8 is measured. Each states shape, dtype and FLOP model only; measuring is the
// harness's job.
#include <fmt/core.h>

#include <vector>

#include "bench_families.hpp"
#include "cuda/gemm.hpp"
#include "model/flops.hpp"

namespace wflops {

namespace {

const std::vector<DType> kAllDtypes = {DType::fp32, DType::tf32, DType::fp16, DType::bf16, DType::fp8_e4m3};
const std::vector<GemmImpl> kAllImpls = {GemmImpl::cublas,
                                         GemmImpl::cublaslt,
                                         GemmImpl::cublaslt_auto,
                                         GemmImpl::cublaslt_fastacc,
                                         GemmImpl::cublaslt_auto_fastacc,
                                         GemmImpl::wmma};

void add_gemm(Registry& r, GemmImpl impl, DType dtype, GemmShape s, std::set<std::string> suites,
              std::string label = "") {
  if (!gemm_impl_supports(impl, dtype)) return;
  BenchSpec spec("matmul", gemm_impl_name(impl), dtype, fmt::format("m:{}/n:{}/k:{}", s.m, s.n, s.k));
  spec.flops = flops::gemm(s.m, s.n, s.k);
  const double e = dtype_bytes(dtype);
  spec.bytes = flops::gemm_bytes(s.m, s.n, s.k, e, e, dtype_bytes(gemm_output_type(dtype)));
  spec.suites = std::move(suites);
  spec.label = std::move(label);
  spec.make = [impl, dtype, s] { return make_gemm_workload(impl, dtype, s); };
  r.add(std::move(spec));
}

// The forward GEMMs of one transformer layer of hidden size h on T tokens (x W, x of T x h).
struct LayerGemm {
  const char* what;
  GemmShape shape;
};
std::vector<LayerGemm> transformer_gemms(long h, long tokens) {
  return {{"QKV projection", {tokens, 3 * h, h}},
          {"attention output projection", {tokens, h, h}},
          {"MLP up-projection", {tokens, 4 * h, h}},
          {"MLP down-projection", {tokens, h, 4 * h}}};
}

}  // namespace

void add_matmul_benchmarks(Registry& r) {
  // The reference problem of the A100 MLP table (4096 x 8192 x 4096): every implementation and dtype.
  // The seed suite reproduces that table's four rows, so it holds only its fp16 matmul (the other
  // three are MLP steps, bench/mlp_bench.cpp).
  const GemmShape reference{4096, 8192, 4096};
  for (GemmImpl impl : kAllImpls) {
    for (DType t : kAllDtypes) {
      std::set<std::string> suites = {"quick"};
      if (impl == GemmImpl::cublaslt_auto && t == DType::fp16) suites.insert("seed");
      add_gemm(r, impl, t, reference, suites, "reference 4096x8192x4096");
    }
  }
  // Square sweep.
  for (long n : {1024L, 2048L, 4096L, 8192L, 16384L}) {
    for (GemmImpl impl : kAllImpls) {
      for (DType t : kAllDtypes) {
        std::set<std::string> suites = {"square"};
        if (n == 8192 && (impl == GemmImpl::cublaslt_auto || impl == GemmImpl::cublaslt_auto_fastacc)) {
          suites.insert("quick");
        }
        if (n == 4096 && (t == DType::bf16 || t == DType::fp16)) suites.insert("quick");
        add_gemm(r, impl, t, {n, n, n}, suites, "square");
      }
    }
  }
  // Transformer layers at training token counts.
  for (long h : {768L, 1600L, 2048L, 4096L, 8192L}) {
    for (long tokens : {8192L, 32768L}) {
      for (const LayerGemm& g : transformer_gemms(h, tokens)) {
        const std::string label = fmt::format("h={} T={} {}", h, tokens, g.what);
        for (DType t : {DType::tf32, DType::fp16, DType::bf16, DType::fp8_e4m3}) {
          std::set<std::string> suites = {"transformer"};
          if (t == DType::bf16 && tokens == 8192 && (h == 768 || h == 4096)) suites.insert("quick");
          add_gemm(r, GemmImpl::cublaslt_auto, t, g.shape, suites, label);
        }
        add_gemm(r, GemmImpl::cublaslt_auto_fastacc, DType::fp8_e4m3, g.shape, {"transformer"}, label);
        add_gemm(r, GemmImpl::cublas, DType::bf16, g.shape, {"transformer"}, label);
        add_gemm(r, GemmImpl::wmma, DType::bf16, g.shape, {"transformer"}, label);
      }
    }
  }
  // Maximum-achievable search: the best of a grid of large shapes per dtype, the ceiling that
  // later benchmarks quote beside the datasheet peak (summary.matmul_max_tflops in the JSON).
  for (DType t : {DType::tf32, DType::fp16, DType::bf16, DType::fp8_e4m3}) {
    for (long m : {4096L, 8192L, 12288L, 16384L}) {
      for (long n : {4096L, 8192L, 12288L, 16384L}) {
        for (long k : {4096L, 8192L, 16384L}) {
          add_gemm(r, GemmImpl::cublaslt_auto, t, {m, n, k}, {"max"}, "maximum-achievable search");
          add_gemm(r, GemmImpl::cublaslt_auto_fastacc, t, {m, n, k}, {"max"}, "maximum-achievable search");
        }
      }
    }
  }
}

}  // namespace wflops
