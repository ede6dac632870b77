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
#include "model/flops_model_phases.hpp"
#include "model_parts.hpp"

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

// What each weight matrix is, in labels; by flops::model_gemms' component words.
constexpr const char* kQkv = "QKV projection";
constexpr const char* kOutProj = "attention output projection";
constexpr const char* kMlpUp = "MLP up-projection";
constexpr const char* kMlpDown = "MLP down-projection";

std::string matrix_what(const std::string& component) {
  if (component == "qkv") return kQkv;
  if (component == "out_proj") return kOutProj;
  if (component == "mlp_up") return kMlpUp;
  if (component == "mlp_down") return kMlpDown;
  if (component == "lm_head") return "LM head";
  return component;
}

// The forward GEMMs of one transformer layer of hidden size h on T tokens (x W, x of T x h).
struct LayerGemm {
  const char* what;
  GemmShape shape;
};
std::vector<LayerGemm> transformer_gemms(long h, long tokens) {
  return {{kQkv, {tokens, 3 * h, h}},
          {kOutProj, {tokens, h, h}},
          {kMlpUp, {tokens, 4 * h, h}},
          {kMlpDown, {tokens, h, 4 * h}}};
}

// The square shape whose autotuned GEMM is the quick suite's (and the model parts') ceiling.
constexpr long kCeilingSide = 8192;

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
        if (n == kCeilingSide && (impl == GemmImpl::cublaslt_auto || impl == GemmImpl::cublaslt_auto_fastacc)) {
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

void add_model_matmuls(Registry& r, const flops::ModelStepShape& m, DType dtype, const std::set<std::string>& suites) {
  const long tokens = static_cast<long>(m.tokens());
  for (const flops::ModelGemm& g : flops::model_gemms(m)) {
    const GemmShape shape{tokens, static_cast<long>(g.out), static_cast<long>(g.in)};
    if (!gemm_unsupported_reason(GemmImpl::cublaslt_auto, dtype, shape).empty()) continue;
    // The transformer sweep's label where it has the shape already (so it stays as it is).
    const std::string label =
        fmt::format("h={} T={} {}", static_cast<long>(m.hidden), tokens, matrix_what(g.component));
    add_gemm(r, GemmImpl::cublaslt_auto, dtype, shape, suites, label);
  }
  add_gemm(r, GemmImpl::cublaslt_auto, dtype, {kCeilingSide, kCeilingSide, kCeilingSide}, suites, "square");
}

}  // namespace wflops
