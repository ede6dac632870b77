#include "cuda/moe_expert_gemm.hpp"

#include <algorithm>
#include <stdexcept>

#include "cuda/cuda_check.hpp"
#include "moe/moe_grouped_gemm.cuh"
#include "moe/moe_grouped_pointers.cuh"

namespace wflops {

namespace {
constexpr std::size_t kBf16 = 2;
}  // namespace

ExpertGemmRunner::ExpertGemmRunner(MoeGemmImpl impl, int experts, int slots, int gemms_per_slot)
    : impl_(impl), experts_(experts), slots_(slots), per_slot_(gemms_per_slot) {
  grouped_.resize(static_cast<std::size_t>(slots_) * per_slot_);
  if (impl_ == MoeGemmImpl::grouped) {
    pointers_ = DeviceBuffer(static_cast<std::size_t>(slots_) * per_slot_ * 3 * experts_ * sizeof(void*));
  }
}

void ExpertGemmRunner::set_routing(const std::vector<int>& counts, const std::vector<int>& offsets) {
  if (static_cast<int>(counts.size()) != experts_ || static_cast<int>(offsets.size()) < experts_) {
    throw std::runtime_error("expert GEMMs: counts/offsets do not match the expert count");
  }
  counts_ = counts;
  offsets_ = offsets;
}

void ExpertGemmRunner::set_device_offsets(const int* offsets, long total_rows) {
  if (impl_ != MoeGemmImpl::ours) return;
  if (offsets == nullptr || total_rows < 0) throw std::runtime_error("expert GEMMs: no device offsets");
  device_offsets_ = offsets;
  max_tiles_ = kernels::moe_grouped_max_tiles(total_rows, experts_);
  tile_map_ = DeviceBuffer(static_cast<std::size_t>(kernels::moe_grouped_tile_map_ints(max_tiles_)) * sizeof(int));
}

void ExpertGemmRunner::build_tile_map(cudaStream_t stream) {
  if (impl_ != MoeGemmImpl::ours) return;
  if (device_offsets_ == nullptr) throw std::runtime_error("expert GEMMs: set_device_offsets was not called");
  CUDA_CHECK(kernels::moe_grouped_tile_map(device_offsets_, experts_, tile_map_.as<int>(), max_tiles_, stream));
}

// The layer describes its GEMMs in cuBLAS's column-major terms; our kernels take row-major operands.
// A column-major m x n matrix with leading dimension m is the row-major n x m matrix, so:
//   n = token count (forward, input grad): C[r, :m] = X[r, :k] op(W), X = operand b, W = operand a
//     (ta = T: W_e is row-major [m, k], lda = k; ta = N: W_e is row-major [k, m], lda = m);
//   k = token count (weight grad): C_e (row-major [n, m]) = sum over rows r of B[r, :n]^T A[r, :m].
void ExpertGemmRunner::run_ours(const ExpertGemm& g, cudaStream_t stream) const {
  if (device_offsets_ == nullptr) throw std::runtime_error("expert GEMMs: set_device_offsets was not called");
  const auto unsupported = [] {
    return std::runtime_error(
        "our grouped GEMM runs the MoE layer's shapes only (token rows x weights, or rows^T x rows)");
  };
  if (g.k == kExpertTokens) {
    const bool ok = g.ta == CUBLAS_OP_N && g.tb == CUBLAS_OP_T && g.a.rows && g.b.rows && !g.c.rows && g.m > 0 &&
                    g.n > 0 && g.lda == g.m && g.ldb == g.n && g.ldc == g.m &&
                    g.a.row_elems == static_cast<std::size_t>(g.m) && g.b.row_elems == static_cast<std::size_t>(g.n) &&
                    g.c.expert_elems == static_cast<std::size_t>(g.m) * static_cast<std::size_t>(g.n);
    if (!ok) throw unsupported();
    throw_if_unsupported(
        kernels::moe_grouped_gemm_unsupported_reason(kernels::GroupedGemmKind::wgrad, g.n, g.m, experts_, 0));
    CUDA_CHECK(kernels::moe_grouped_gemm_wgrad(g.b.base, g.a.base, const_cast<void*>(g.c.base), device_offsets_, g.n,
                                               g.m, experts_, stream));
    return;
  }
  const bool transposed = g.ta == CUBLAS_OP_T;
  const bool ok = g.n == kExpertTokens && g.tb == CUBLAS_OP_N && !g.a.rows && g.b.rows && g.c.rows && g.m > 0 &&
                  g.k > 0 && g.lda == (transposed ? g.k : g.m) && g.ldb == g.k && g.ldc == g.m &&
                  g.b.row_elems == static_cast<std::size_t>(g.k) && g.c.row_elems == static_cast<std::size_t>(g.m) &&
                  g.a.expert_elems == static_cast<std::size_t>(g.m) * static_cast<std::size_t>(g.k);
  if (!ok) throw unsupported();
  const auto kind = transposed ? kernels::GroupedGemmKind::rows_x_wt : kernels::GroupedGemmKind::rows_x_w;
  throw_if_unsupported(kernels::moe_grouped_gemm_unsupported_reason(kind, g.k, g.m, experts_, max_tiles_));
  CUDA_CHECK(kernels::moe_grouped_gemm_rows(kind, g.b.base, g.a.base, static_cast<long>(g.a.expert_elems),
                                            const_cast<void*>(g.c.base), device_offsets_, tile_map_.as<int>(),
                                            max_tiles_, g.m, g.k, experts_, stream));
}

const void* ExpertGemmRunner::pointer(const ExpertOperand& o, int e) const {
  const std::size_t elems =
      o.rows ? static_cast<std::size_t>(offsets_[e]) * o.row_elems : static_cast<std::size_t>(e) * o.expert_elems;
  return static_cast<const char*>(o.base) + elems * kBf16;
}

void ExpertGemmRunner::zero_c(const ExpertGemm& g, int e, cudaStream_t stream) const {
  // Only weight-shaped outputs (k = token count) can be non-empty with no token: their gradient is 0.
  const std::size_t elems = static_cast<std::size_t>(g.ldc) * size(g.n, e);
  CUDA_CHECK(cudaMemsetAsync(const_cast<void*>(pointer(g.c, e)), 0, elems * kBf16, stream));
}

std::vector<int> grouped_expert_order(const std::vector<int>& counts) {
  std::vector<int> order;
  for (int e = 0; e < static_cast<int>(counts.size()); ++e) {
    if (counts[e] > 0) order.push_back(e);
  }
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return counts[a] < counts[b]; });
  return order;
}

void ExpertGemmRunner::check_slot(int slot, const std::vector<ExpertGemm>& gemms) const {
  if (slot < 0 || slot >= slots_ || static_cast<int>(gemms.size()) > per_slot_) {
    throw std::runtime_error("expert GEMMs: slot out of range");
  }
}

void ExpertGemmRunner::prepare_sizes(int slot, const std::vector<ExpertGemm>& gemms) {
  if (impl_ != MoeGemmImpl::grouped) return;
  check_slot(slot, gemms);
  const std::vector<int> order = grouped_expert_order(counts_);
  for (std::size_t i = 0; i < gemms.size(); ++i) {
    const ExpertGemm& g = gemms[i];
    Grouped& gr = grouped_[static_cast<std::size_t>(slot) * per_slot_ + i];
    gr = Grouped{};
    if (g.k == kExpertTokens) {  // weight-shaped outputs of experts with no token must be zeroed
      for (int e = 0; e < experts_; ++e) {
        if (counts_[e] == 0) gr.empty_experts.push_back(e);
      }
    }
    // Experts with the same token count share every size: one group per run of equal counts.
    for (std::size_t p = 0; p < order.size(); ++p) {
      const int e0 = order[p];
      if (p > 0 && counts_[order[p - 1]] == counts_[e0]) {
        ++gr.group_size.back();
        continue;
      }
      gr.ta.push_back(g.ta);
      gr.tb.push_back(g.tb);
      gr.m.push_back(size(g.m, e0));
      gr.n.push_back(size(g.n, e0));
      gr.k.push_back(size(g.k, e0));
      gr.lda.push_back(g.lda);
      gr.ldb.push_back(g.ldb);
      gr.ldc.push_back(g.ldc);
      gr.alpha.push_back(1.0f);
      gr.beta.push_back(0.0f);
      gr.group_size.push_back(1);
    }
  }
}

void ExpertGemmRunner::prepare(int slot, const std::vector<ExpertGemm>& gemms, cudaStream_t stream) {
  if (impl_ != MoeGemmImpl::grouped) return;
  prepare_sizes(slot, gemms);
  const std::vector<int> order = grouped_expert_order(counts_);
  std::vector<const void*> host(static_cast<std::size_t>(per_slot_) * 3 * experts_, nullptr);
  for (std::size_t i = 0; i < gemms.size(); ++i) {
    const ExpertGemm& g = gemms[i];
    for (std::size_t p = 0; p < order.size(); ++p) {
      host[(i * 3 + 0) * experts_ + p] = pointer(g.a, order[p]);
      host[(i * 3 + 1) * experts_ + p] = pointer(g.b, order[p]);
      host[(i * 3 + 2) * experts_ + p] = pointer(g.c, order[p]);
    }
  }
  char* dst = pointers_.as<char>() + static_cast<std::size_t>(slot) * per_slot_ * 3 * experts_ * sizeof(void*);
  CUDA_CHECK(cudaMemcpyAsync(dst, host.data(), host.size() * sizeof(void*), cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));  // `host` goes out of scope
}

void ExpertGemmRunner::build_device_pointers(int slot, const std::vector<ExpertGemm>& gemms, const int* device_counts,
                                             cudaStream_t stream) {
  if (impl_ != MoeGemmImpl::grouped) return;
  check_slot(slot, gemms);
  kernels::GroupedPointerSpec spec;
  for (const ExpertGemm& g : gemms) {
    for (const ExpertOperand* o : {&g.a, &g.b, &g.c}) {
      if (spec.operands == kernels::kMaxGroupedPointerOperands) {
        throw std::runtime_error("expert GEMMs: too many operands for the device pointer kernel");
      }
      spec.operand[spec.operands++] = {static_cast<const char*>(o->base), o->expert_elems * kBf16, o->row_elems * kBf16,
                                       o->rows ? 1 : 0};
    }
  }
  void** dst = pointers_.as<void*>() + static_cast<std::size_t>(slot) * per_slot_ * 3 * experts_;
  CUDA_CHECK(kernels::moe_grouped_pointers(device_counts, experts_, spec, dst, stream));
}

void ExpertGemmRunner::run(int slot, int index, const ExpertGemm& g, cublasHandle_t handle, cudaStream_t stream) {
  if (impl_ == MoeGemmImpl::ours) {  // no cuBLAS, no host-side sizes
    run_ours(g, stream);
    return;
  }
  // `handle` comes bound to `stream` and our workspace (cublas_on): no cublasSetStream here, which
  // would reset its workspace to cuBLAS's default pool (cuBLAS docs, cublasSetStream).
  const float alpha = 1.0f, beta = 0.0f;
  switch (impl_) {
    case MoeGemmImpl::grouped: {
      const Grouped& gr = grouped_[static_cast<std::size_t>(slot) * per_slot_ + index];
      for (int e : gr.empty_experts) zero_c(g, e, stream);
      if (gr.group_size.empty()) return;
      void** base = pointers_.as<void*>() + (static_cast<std::size_t>(slot) * per_slot_ + index) * 3 * experts_;
      CUBLAS_CHECK(cublasGemmGroupedBatchedEx(
          handle, gr.ta.data(), gr.tb.data(), gr.m.data(), gr.n.data(), gr.k.data(), gr.alpha.data(), base, CUDA_R_16BF,
          gr.lda.data(), base + experts_, CUDA_R_16BF, gr.ldb.data(), gr.beta.data(), base + 2 * experts_, CUDA_R_16BF,
          gr.ldc.data(), static_cast<int>(gr.group_size.size()), gr.group_size.data(), CUBLAS_COMPUTE_32F));
      return;
    }
    case MoeGemmImpl::loop:
      for (int e = 0; e < experts_; ++e) {
        if (counts_[e] == 0) {
          if (g.k == kExpertTokens) zero_c(g, e, stream);
          continue;
        }
        CUBLAS_CHECK(cublasGemmEx(handle, g.ta, g.tb, size(g.m, e), size(g.n, e), size(g.k, e), &alpha, pointer(g.a, e),
                                  CUDA_R_16BF, g.lda, pointer(g.b, e), CUDA_R_16BF, g.ldb, &beta,
                                  const_cast<void*>(pointer(g.c, e)), CUDA_R_16BF, g.ldc, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
      }
      return;
    case MoeGemmImpl::padded: {
      // Every expert has `capacity` rows, stored capacity rows apart.
      const int capacity = counts_[0];
      for (int e = 1; e < experts_; ++e) {
        if (counts_[e] != capacity || offsets_[e] != e * capacity) {
          throw std::runtime_error("padded expert GEMMs need the same token count for every expert");
        }
      }
      auto stride = [&](const ExpertOperand& o) {
        return static_cast<long long>(o.rows ? static_cast<std::size_t>(capacity) * o.row_elems : o.expert_elems);
      };
      CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          handle, g.ta, g.tb, size(g.m, 0), size(g.n, 0), size(g.k, 0), &alpha, pointer(g.a, 0), CUDA_R_16BF, g.lda,
          stride(g.a), pointer(g.b, 0), CUDA_R_16BF, g.ldb, stride(g.b), &beta, const_cast<void*>(pointer(g.c, 0)),
          CUDA_R_16BF, g.ldc, stride(g.c), experts_, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      return;
    }
    case MoeGemmImpl::ours: return;  // handled above
  }
}

}  // namespace wflops
