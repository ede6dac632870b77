#include "cuda/gemm.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "batch_plan.hpp"
#include "common/count_nonfinite.cuh"
#include "cuda/blas_handles.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/rotated_inputs.hpp"
#include "cuda/verify_report.hpp"
#include "matmul/matmul_wmma.cuh"
#include "model/flops.hpp"
#include "numeric_formats.hpp"
#include "reference/verify_error.hpp"

namespace wflops {

namespace {

constexpr int kAutotuneCandidates = 8;

bool uses_lt(GemmImpl impl) { return impl != GemmImpl::cublas && impl != GemmImpl::wmma; }
bool autotuned(GemmImpl impl) { return impl == GemmImpl::cublaslt_auto || impl == GemmImpl::cublaslt_auto_fastacc; }
bool fast_accum(GemmImpl impl) { return impl == GemmImpl::cublaslt_fastacc || impl == GemmImpl::cublaslt_auto_fastacc; }

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::fp64: return CUDA_R_64F;
    case DType::fp32:
    case DType::tf32: return CUDA_R_32F;
    case DType::fp16: return CUDA_R_16F;
    case DType::bf16: return CUDA_R_16BF;
    case DType::fp8_e4m3: return CUDA_R_8F_E4M3;
    case DType::int8: return CUDA_R_8I;
  }
  return CUDA_R_32F;
}

cublasComputeType_t compute_type(DType t) {
  return t == DType::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

class GemmWorkload final : public Workload {
 public:
  GemmWorkload(GemmImpl impl, DType dtype, GemmShape shape) : impl_(impl), dtype_(dtype), shape_(shape) {
    a_ = inputs_.add("A", dtype_, static_cast<std::size_t>(shape_.m) * shape_.k);
    b_ = inputs_.add("B", dtype_, static_cast<std::size_t>(shape_.n) * shape_.k);
    c_bytes_ = static_cast<std::size_t>(shape_.m) * shape_.n * dtype_bytes(gemm_output_type(dtype_));
  }
  ~GemmWorkload() override {
    if (pref_) cublasLtMatmulPreferenceDestroy(pref_);
    if (layout_a_) cublasLtMatrixLayoutDestroy(layout_a_);
    if (layout_b_) cublasLtMatrixLayoutDestroy(layout_b_);
    if (layout_c_) cublasLtMatrixLayoutDestroy(layout_c_);
    if (desc_) cublasLtMatmulDescDestroy(desc_);
  }

  // What one launch reads (the padding between copies is not read).
  double input_bytes() const override { return static_cast<double>(inputs_.data_bytes()); }
  double device_bytes(int sets) const override {
    return inputs_.device_bytes(sets) + static_cast<double>(c_bytes_) + kBlasWorkspaceBytes;
  }

  void allocate(int sets, cudaStream_t stream) override {
    throw_if_unsupported(gemm_unsupported_reason(impl_, dtype_, shape_));
    inputs_.allocate(sets);
    c_ = DeviceBuffer(c_bytes_);
    inputs_.fill_all(stream);
    (void)cublas_on(stream);  // created now, not inside the first timed launch
    if (uses_lt(impl_)) create_lt(stream);
    CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  void tune(cudaStream_t stream) override {
    if (!uses_lt(impl_)) return;
    const int wanted = autotuned(impl_) ? kAutotuneCandidates : 1;
    std::vector<cublasLtMatmulHeuristicResult_t> results(wanted);
    int returned = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(cublaslt_handle(), desc_, layout_a_, layout_b_, layout_c_, layout_c_,
                                                pref_, wanted, results.data(), &returned));
    if (returned == 0) throw std::runtime_error("cuBLASLt's heuristic offers no algorithm for this problem");
    results.resize(static_cast<std::size_t>(returned));
    candidates_ = returned;
    chosen_index_ = 0;
    algo_ = results[0].algo;
    if (autotuned(impl_) && returned > 1) autotune(results, stream);
  }

  Verification verify(cudaStream_t stream) override {
    CUDA_CHECK(cudaMemsetAsync(c_.get(), 0xFF, c_bytes_, stream));  // NaN in every float format
    inputs_.fill(0, stream);
    launch(stream, 0);
    CUDA_CHECK(cudaStreamSynchronize(stream));
    return verify_gemm_tn(dtype_, gemm_output_type(dtype_), a(0), b(0), c_.get(), shape_, dtype_tolerance(dtype_),
                          stream);
  }

  void launch(cudaStream_t stream, int set) override {
    const float alpha = 1.0f, beta = 0.0f;
    const int m = static_cast<int>(shape_.m), n = static_cast<int>(shape_.n), k = static_cast<int>(shape_.k);
    switch (impl_) {
      case GemmImpl::cublas: {
        CUBLAS_CHECK(cublasGemmEx(cublas_on(stream), CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, a(set),
                                  cuda_type(dtype_), k, b(set), cuda_type(dtype_), k, &beta, c_.get(),
                                  cuda_type(gemm_output_type(dtype_)), m, compute_type(dtype_), CUBLAS_GEMM_DEFAULT));
        break;
      }
      case GemmImpl::cublaslt:
      case GemmImpl::cublaslt_auto:
      case GemmImpl::cublaslt_fastacc:
      case GemmImpl::cublaslt_auto_fastacc:
        CUBLAS_CHECK(cublasLtMatmul(cublaslt_handle(), desc_, &alpha, a(set), layout_a_, b(set), layout_b_, &beta,
                                    c_.get(), layout_c_, c_.get(), layout_c_, &algo_, blas_workspace(),
                                    kBlasWorkspaceBytes, stream));
        break;
      case GemmImpl::wmma:
        CUDA_CHECK(kernels::matmul_wmma(dtype_, a(set), b(set), c_.get(), shape_.m, shape_.n, shape_.k, stream));
        break;
    }
  }

  std::string describe() const override {
    if (!autotuned(impl_)) return "";
    std::string out = fmt::format("algorithm {} of the heuristic's top {}", chosen_index_ + 1, candidates_);
    if (candidates_ < 2) return out;
    if (chosen_index_ == 0) {
      return out + fmt::format(" (no other timed over {:.0f}% faster)", 100.0 * batch_plan::kAutotuneMargin);
    }
    if (gain_ > 0) return out + fmt::format(" ({:.1f}% faster than the first)", 100.0 * gain_);
    return out + " (the first did not run)";
  }

  // The autotuned choice, as counters: its 0-based place in the heuristic's order, and of how many.
  std::map<std::string, double> measured_counters() const override {
    if (!autotuned(impl_) || candidates_ == 0) return {};
    return {{"algo_index", chosen_index_}, {"algo_candidates", candidates_}};
  }

 private:
  // Times every candidate the way the harness times a benchmark (src/batch_plan.hpp): each one's
  // first call alone and waited for (it may load a module; one that cannot run this problem is left
  // out), a warm-up, then each in a batch of about 1 ms behind the blocking kernel, the candidates
  // interleaved over several rounds, each one's median compared. The heuristic's first choice stays
  // unless another beats it by more than the margin.
  void autotune(const std::vector<cublasLtMatmulHeuristicResult_t>& results, cudaStream_t stream) {
    namespace bp = batch_plan;
    struct Candidate {
      bool runs = false;
      long ops = 0;  // stream operations of one call (0: not counted, so not held back)
      bp::Plan plan;
      std::vector<double> seconds;  // per call, one sample per round
    };
    std::vector<Candidate> c(results.size());
    BlockedTimer timer(stream);
    const auto call = [&](long i) { launch(stream, static_cast<int>(i % inputs_.sets())); };
    for (std::size_t i = 0; i < c.size(); ++i) {
      algo_ = results[i].algo;
      try {
        (void)timer.time(1, false, call);
      } catch (const std::exception&) {
        continue;  // a candidate that cannot run this problem
      }
      c[i].runs = true;
      c[i].ops = count_stream_ops(stream, [&] { launch(stream, 0); });
    }
    std::optional<std::size_t> first;
    for (std::size_t i = 0; i < c.size() && !first; ++i) {
      if (c[i].runs) first = i;
    }
    if (!first) throw std::runtime_error("none of cuBLASLt's candidate algorithms ran");
    // Warm-up on the first that runs: clocks up before any candidate is timed, batches growing to
    // the target time, for the minimum warm-up time.
    algo_ = results[*first].algo;
    const bool warm_blocked = bp::max_blocked_launches(c[*first].ops) > 0;
    const auto began = std::chrono::steady_clock::now();
    long count = 1;
    double per_call = 0;
    do {
      const double s = timer.time(count, warm_blocked, call);
      per_call = s / static_cast<double>(count);
      count = bp::next_warmup_launches(count, s, c[*first].ops, warm_blocked);
    } while (!bp::warmup_done(std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count(), {}));
    // Each candidate's batch, from one sample of it sized by the warm-up's time per call.
    for (std::size_t i = 0; i < c.size(); ++i) {
      if (!c[i].runs) continue;
      algo_ = results[i].algo;
      const bp::Plan trial = bp::plan_batch(per_call, c[i].ops, false);
      const double s = timer.time(trial.launches, trial.blocked, call);
      c[i].plan = bp::plan_batch(s / static_cast<double>(trial.launches), c[i].ops, false);
    }
    // Rounds: every candidate once per round, round r starting at candidate r, so that none always
    // runs right after the same other one.
    for (int r = 0; r < bp::kAutotuneRounds; ++r) {
      for (std::size_t j = 0; j < c.size(); ++j) {
        const std::size_t i = (j + static_cast<std::size_t>(r)) % c.size();
        if (!c[i].runs) continue;
        algo_ = results[i].algo;
        const long n = c[i].plan.launches;
        c[i].seconds.push_back(timer.time(n, c[i].plan.blocked, call) / static_cast<double>(n));
      }
    }
    std::vector<std::optional<double>> medians(c.size());
    for (std::size_t i = 0; i < c.size(); ++i) {
      if (c[i].runs) medians[i] = bp::median(c[i].seconds);
    }
    const std::optional<std::size_t> pick = bp::choose_candidate(medians);
    if (!pick) throw std::runtime_error("none of cuBLASLt's candidate algorithms ran");
    chosen_index_ = static_cast<int>(*pick);
    algo_ = results[*pick].algo;
    gain_ = medians[0] && *pick != 0 ? *medians[0] / *medians[*pick] - 1 : 0;
  }

  void* a(int set) const { return inputs_.ptr(a_, set); }
  void* b(int set) const { return inputs_.ptr(b_, set); }

  void create_lt(cudaStream_t stream) {
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc_, compute_type(dtype_), CUDA_R_32F));
    const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof transa));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof transb));
    if (fast_accum(impl_)) {
      const std::int8_t on = 1;  // int8_t, default 0 (cublasLt.h, CUBLASLT_MATMUL_DESC_FAST_ACCUM)
      CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &on, sizeof on));
    }
    if (dtype_ == DType::fp8_e4m3) {
      // fp8 GEMMs take per-tensor scales through device pointers; ours are 1 (inputs in [-1, 1)).
      scales_ = DeviceBuffer(2 * sizeof(float));
      const float ones[2] = {1.0f, 1.0f};
      CUDA_CHECK(cudaMemcpyAsync(scales_.get(), ones, sizeof ones, cudaMemcpyHostToDevice, stream));
      const float* sa = scales_.as<float>();
      const float* sb = scales_.as<float>() + 1;
      CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sa, sizeof sa));
      CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sb, sizeof sb));
    }
    // Column-major layouts: A is stored K x M (op T makes it M x K), B is K x N, C is M x N.
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout_a_, cuda_type(dtype_), shape_.k, shape_.m, shape_.k));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout_b_, cuda_type(dtype_), shape_.k, shape_.n, shape_.k));
    CUBLAS_CHECK(
        cublasLtMatrixLayoutCreate(&layout_c_, cuda_type(gemm_output_type(dtype_)), shape_.m, shape_.n, shape_.m));
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref_));
    const std::uint64_t ws = kBlasWorkspaceBytes;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref_, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  }

  GemmImpl impl_;
  DType dtype_;
  GemmShape shape_;
  RotatedInputs inputs_;  // A and B, each its own allocation of every set
  RotatedInputs::Id a_, b_;
  std::size_t c_bytes_ = 0;
  DeviceBuffer c_, scales_;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t layout_a_ = nullptr, layout_b_ = nullptr, layout_c_ = nullptr;
  cublasLtMatmulPreference_t pref_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  int candidates_ = 0;
  int chosen_index_ = 0;
  double gain_ = 0;  // the chosen one's speed over the heuristic's first's, minus 1
};

// Rows (or columns) to compare: the first, the last and up to `count` random ones.
std::vector<long> sample_indices(long extent, int count, std::mt19937_64& rng) {
  std::set<long> picked = {0, extent - 1};
  std::uniform_int_distribution<long> pick(0, extent - 1);
  while (static_cast<long>(picked.size()) < std::min<long>(extent, count + 2)) picked.insert(pick(rng));
  return {picked.begin(), picked.end()};
}

}  // namespace

std::string gemm_impl_name(GemmImpl impl) {
  switch (impl) {
    case GemmImpl::cublas: return "cublas";
    case GemmImpl::cublaslt: return "cublaslt";
    case GemmImpl::cublaslt_auto: return "cublaslt_auto";
    case GemmImpl::cublaslt_fastacc: return "cublaslt_fastacc";
    case GemmImpl::cublaslt_auto_fastacc: return "cublaslt_auto_fastacc";
    case GemmImpl::wmma: return "wmma";
  }
  return "?";
}

bool gemm_impl_supports(GemmImpl impl, DType dtype) {
  switch (impl) {
    case GemmImpl::cublas:
      return dtype == DType::fp32 || dtype == DType::tf32 || dtype == DType::fp16 || dtype == DType::bf16;
    case GemmImpl::cublaslt:
    case GemmImpl::cublaslt_auto:
      return dtype == DType::fp32 || dtype == DType::tf32 || dtype == DType::fp16 || dtype == DType::bf16 ||
             dtype == DType::fp8_e4m3;
    case GemmImpl::cublaslt_fastacc:
    case GemmImpl::cublaslt_auto_fastacc: return dtype == DType::fp8_e4m3;  // an fp8-only mode
    case GemmImpl::wmma: return dtype == DType::fp16 || dtype == DType::bf16;
  }
  return false;
}

DType gemm_output_type(DType dtype) { return dtype == DType::fp8_e4m3 ? DType::bf16 : dtype; }

std::string gemm_unsupported_reason(GemmImpl impl, DType dtype, const GemmShape& s) {
  if (!gemm_impl_supports(impl, dtype)) {
    return fmt::format("{} has no {} GEMM", gemm_impl_name(impl), dtype_name(dtype));
  }
  if (s.m < 1 || s.n < 1 || s.k < 1 || s.m > INT32_MAX || s.n > INT32_MAX || s.k > INT32_MAX) {
    return fmt::format("shape m:{} n:{} k:{} is outside 1..2^31-1", s.m, s.n, s.k);
  }
  if (dtype == DType::fp8_e4m3 && (s.m % 16 || s.n % 16 || s.k % 16)) {
    return fmt::format("fp8 GEMMs need m, n and k to be multiples of 16 (m:{} n:{} k:{})", s.m, s.n, s.k);
  }
  if (impl == GemmImpl::wmma) return kernels::matmul_wmma_unsupported_reason(dtype, s.m, s.n, s.k);
  return "";
}

std::unique_ptr<Workload> make_gemm_workload(GemmImpl impl, DType dtype, const GemmShape& shape) {
  return std::make_unique<GemmWorkload>(impl, dtype, shape);
}

Verification verify_gemm_tn(DType in, DType out, const void* a, const void* b, const void* c, const GemmShape& shape,
                            double tolerance, cudaStream_t stream) {
  Verification v;
  v.tolerance = tolerance;
  // 1. Every output element written and finite.
  DeviceBuffer count(sizeof(unsigned long long));
  CUDA_CHECK(cudaMemsetAsync(count.get(), 0, count.bytes(), stream));
  const std::size_t c_elems = static_cast<std::size_t>(shape.m) * shape.n;
  CUDA_CHECK(kernels::count_nonfinite(out, c, c_elems, count.as<unsigned long long>(), stream));
  unsigned long long bad = 0;
  CUDA_CHECK(cudaMemcpyAsync(&bad, count.get(), sizeof bad, cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  if (bad) {
    v.detail = fmt::format("{} of {} outputs are NaN or Inf (unwritten or overflowed)", bad, c_elems);
    return v;
  }
  // 2. Sampled rows x columns against an fp64 reference on the exact stored inputs.
  std::mt19937_64 rng(fresh_seed());
  const std::vector<long> rows = sample_indices(shape.m, 30, rng);
  const std::vector<long> cols = sample_indices(shape.n, 30, rng);
  const std::size_t ein = dtype_bytes(in), eout = dtype_bytes(out);
  const std::size_t k = static_cast<std::size_t>(shape.k);
  std::vector<unsigned char> a_rows(rows.size() * k * ein), b_rows(cols.size() * k * ein),
      c_cols(cols.size() * shape.m * eout);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    CUDA_CHECK(cudaMemcpy(a_rows.data() + r * k * ein, static_cast<const char*>(a) + rows[r] * k * ein, k * ein,
                          cudaMemcpyDeviceToHost));
  }
  for (std::size_t j = 0; j < cols.size(); ++j) {
    CUDA_CHECK(cudaMemcpy(b_rows.data() + j * k * ein, static_cast<const char*>(b) + cols[j] * k * ein, k * ein,
                          cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(c_cols.data() + j * shape.m * eout,
                          static_cast<const char*>(c) + cols[j] * static_cast<std::size_t>(shape.m) * eout,
                          shape.m * eout, cudaMemcpyDeviceToHost));
  }
  ErrorSum error;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (std::size_t j = 0; j < cols.size(); ++j) {
      double ref = 0;
      for (std::size_t kk = 0; kk < k; ++kk) {
        ref += decode_element(in, a_rows.data(), r * k + kk) * decode_element(in, b_rows.data(), j * k + kk);
      }
      error.add(decode_element(out, c_cols.data(), j * shape.m + rows[r]), ref);
    }
  }
  // Random inputs never give an all-zero product; if they did, matching zeros would prove nothing
  // about the GEMM, so this fails where ErrorSum alone would pass.
  if (error.ref2() == 0) {
    v.rel_err = error.relative();
    v.detail = fmt::format("the reference of the {} x {} sampled outputs is all zero: nothing was checked", rows.size(),
                           cols.size());
    return v;
  }
  ErrorReport report;
  report.add("C", error, tolerance);
  return verification_of(report,
                         fmt::format("{} x {} sampled outputs, all {} finite", rows.size(), cols.size(), c_elems));
}

}  // namespace wflops
