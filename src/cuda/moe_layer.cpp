#include "cuda/moe_layer.hpp"

#include <cuda_bf16.h>
#include <fmt/core.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/count_nonfinite.cuh"
#include "cuda/blas_handles.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/rotated_inputs.hpp"
#include "cuda/verify_report.hpp"
#include "model/flops.hpp"
#include "moe/moe_combine.cuh"
#include "moe/moe_expert_choice.cuh"
#include "moe/moe_fill.cuh"
#include "moe/moe_gather.cuh"
#include "moe/moe_gelu.cuh"
#include "moe/moe_grouped_gemm.cuh"
#include "moe/moe_permute.cuh"
#include "moe/moe_softmax.cuh"
#include "moe/moe_topk.cuh"
#include "numeric_formats.hpp"
#include "reference/verify_error.hpp"

namespace wflops {

namespace {

using bf16 = __nv_bfloat16;
constexpr std::size_t kBf16 = 2;
constexpr int kExpertGemms = 6;
// The dominant expert's router weight on the constant feature: its logit leads by ~64, so its
// probability is ~1 and every other expert's ~e^-64 (still a normal fp32 number).
constexpr float kDominantWeight = 64.0f;

// Copies `count` elements of type T from device memory at `src` + `offset` elements.
template <typename T>
std::vector<T> fetch(const void* src, std::size_t offset, std::size_t count) {
  std::vector<T> out(count);
  if (count) {
    CUDA_CHECK(cudaMemcpy(out.data(), static_cast<const T*>(src) + offset, count * sizeof(T), cudaMemcpyDeviceToHost));
  }
  return out;
}

double bf(const std::vector<std::uint16_t>& v, std::size_t i) { return decode_bf16(v[i]); }

}  // namespace

std::string moe_gemm_impl_name(MoeGemmImpl impl) {
  switch (impl) {
    case MoeGemmImpl::grouped: return "grouped";
    case MoeGemmImpl::loop: return "loop";
    case MoeGemmImpl::padded: return "padded";
    case MoeGemmImpl::ours: return "ours_grouped";
  }
  return "?";
}

std::string moe_unsupported_reason(const MoeConfig& c) {
  const moe::Dims dims{c.d, c.experts, c.granularity, c.tokens, c.routing};
  std::string why = moe::dims_error(dims);
  if (!why.empty()) return why;
  if (c.d % 8) return fmt::format("d = {} must be a multiple of 8 (16-byte row copies)", c.d);
  const long n = dims.experts();
  if (c.tokens * c.granularity > (1L << 30) || c.tokens * n > (1L << 31) / 2) {
    return fmt::format("T = {} with E*G = {} experts is too large for 32-bit row indices", c.tokens, n);
  }
  if (c.routing == moe::Routing::token_choice) {
    // The top-k kernel's shared memory (without the opt-in beyond 48 KiB): at most 12224 experts.
    const std::string topk =
        kernels::moe_top_k_unsupported_reason(static_cast<int>(n), static_cast<int>(c.granularity));
    if (!topk.empty()) return topk;
  }
  if (c.routing == moe::Routing::expert_choice && c.tokens / flops::kMoeExpertChoiceGroup > 65535) {
    return "expert choice handles at most 65535 groups of 256 tokens";
  }
  if (c.impl == MoeGemmImpl::padded && c.routing != moe::Routing::expert_choice) {
    return "the padded implementation runs at a fixed expert capacity: expert choice only (token choice "
           "would "
           "need token dropping)";
  }
  if (c.impl == MoeGemmImpl::ours) {
    // Our kernels' limits, for each of the shapes the layer runs (row products and weight gradient).
    using kernels::GroupedGemmKind;
    const int ni = static_cast<int>(n);
    const long tiles = kernels::moe_grouped_max_tiles(c.tokens * c.granularity, ni);
    const long f = 4 * c.d / c.granularity;
    for (const std::string& r :
         {kernels::moe_grouped_gemm_unsupported_reason(GroupedGemmKind::rows_x_wt, c.d, f, ni, tiles),
          kernels::moe_grouped_gemm_unsupported_reason(GroupedGemmKind::rows_x_wt, f, c.d, ni, tiles),
          kernels::moe_grouped_gemm_unsupported_reason(GroupedGemmKind::wgrad, f, c.d, ni, 0),
          kernels::moe_grouped_gemm_unsupported_reason(GroupedGemmKind::wgrad, c.d, f, ni, 0)}) {
      if (!r.empty()) return r;
    }
  }
  if (c.dominant_expert >= n)
    return fmt::format("dominant expert {} is not one of the {} experts", c.dominant_expert, n);
  return "";
}

std::string moe_shape(const MoeConfig& c) {
  return fmt::format("d:{}/E:{}/G:{}/tok:{}/route:{}", c.d, c.experts, c.granularity, c.tokens,
                     moe::routing_name(c.routing));
}

// ---------------------------------------------------------------------------------------------
struct MoeLayerWorkload::State {
  MoeConfig c;
  long d, f, n, T, A;  // model width, expert hidden, experts, tokens, assignments (T*G)
  bool token_choice;
  bool ours;  // our grouped GEMM: expert sizes stay on the device
  // The inputs of each set, together in one allocation: x, dy [T,d]; wr [N,d]; w1 [N,f,d]; w2 [N,d,f].
  RotatedInputs inputs{RotatedInputs::Layout::by_set};
  RotatedInputs::Id in_x, in_dy, in_wr, in_w1, in_w2;
  DeviceBuffer probs, dlogits;                                             // [T,N] fp32, bf16
  DeviceBuffer assign_expert, assign_score, iota, sort_keys, sort_values;  // [A]
  DeviceBuffer row_token, row_score, row_expert, d_score, token_rows;      // [A]
  DeviceBuffer expert_counts, token_counts, token_offsets;
  DeviceBuffer expert_offsets;  // ours: [N + 1] row offsets the grouped kernels read on the device
  DeviceBuffer temp;
  std::size_t temp_bytes = 0;
  DeviceBuffer xp, h, act, dact, eo, deo;  // permuted rows: [A,d] or [A,f]
  DeviceBuffer y, dx, dwr, dw1, dw2;
  std::unique_ptr<ExpertGemmRunner> runner;
  std::vector<int> counts_host, offsets_host;
  std::vector<int> verified_counts;

  bf16* in(RotatedInputs::Id id, int set) const { return inputs.as<bf16>(id, set); }
  std::vector<ExpertGemm> gemms(int set) const;
  void fill_set(int set, cudaStream_t stream);
  void fixed_routing();
  void route_and_permute(cudaStream_t stream, int set, PhaseMarks& marks);
  void run(cudaStream_t stream, int set, PhaseMarks& marks);
  struct Checks;  // what verify() checks, one function per check (below)
};

// The six per-expert GEMMs, row-major matrices seen by cuBLAS as column-major transposes:
//   0 forward up      h   [R,f] = xp [R,d] W1^T      1 forward down   eo [R,d] = act [R,f] W2^T
//   2 dgrad down      da  [R,f] = deo [R,d] W2       3 wgrad down     dW2 [d,f] = deo^T act
//   4 wgrad up        dW1 [f,d] = dh^T xp            5 dgrad up       dxp [R,d] = dh W1
// (R = the expert's token count; W1 is [f,d], W2 is [d,f]; dh overwrites da, dxp overwrites deo.)
ExpertGemm gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, ExpertOperand a, ExpertOperand b,
                ExpertOperand c, int lda, int ldb, int ldc) {
  return ExpertGemm{ta, tb, m, n, k, a, b, c, lda, ldb, ldc};
}

std::vector<ExpertGemm> MoeLayerWorkload::State::gemms(int set) const {
  const int di = static_cast<int>(d), fi = static_cast<int>(f);
  const std::size_t wsize = static_cast<std::size_t>(d) * f;
  auto weights = [&](const void* p) { return ExpertOperand{p, wsize, 0, false}; };
  auto rows = [&](const void* p, long width) { return ExpertOperand{p, 0, static_cast<std::size_t>(width), true}; };
  const void* w1 = in(in_w1, set);
  const void* w2 = in(in_w2, set);
  const cublasOperation_t opn = CUBLAS_OP_N, opt = CUBLAS_OP_T;
  const int tok = kExpertTokens;
  const ExpertOperand x_rows = rows(xp.get(), d), h_rows = rows(h.get(), f), act_rows = rows(act.get(), f);
  const ExpertOperand eo_rows = rows(eo.get(), d), deo_rows = rows(deo.get(), d);
  const ExpertOperand dh_rows = rows(dact.get(), f);
  // clang-format off
  //           ta   tb   m   n    k    A            B          C                  lda ldb ldc
  return {gemm(opt, opn, fi, tok, di,  weights(w1), x_rows,    h_rows,             di, di, fi),
          gemm(opt, opn, di, tok, fi,  weights(w2), act_rows,  eo_rows,            fi, fi, di),
          gemm(opn, opn, fi, tok, di,  weights(w2), deo_rows,  dh_rows,            fi, di, fi),
          gemm(opn, opt, fi, di,  tok, act_rows,    deo_rows,  weights(dw2.get()), fi, di, fi),
          gemm(opn, opt, di, fi,  tok, x_rows,      dh_rows,   weights(dw1.get()), di, fi, di),
          gemm(opn, opn, di, tok, fi,  weights(w1), dh_rows,   deo_rows,           di, fi, di)};
  // clang-format on
}

// Fresh random inputs in [-1, 1), except the router weights, narrowed to U(-b, b) with
// b = 3/sqrt(d) (moe::router_weight_bound) so that the logits have a standard deviation near 1:
// from U(-1, 1) they would spread by sqrt(d)/3, making the routing one-hot and the dlogits check
// a victim of fp32 cancellation. With the test hook, x's last column is 1 and only the dominant
// expert has a router weight (kDominantWeight) on it.
void MoeLayerWorkload::State::fill_set(int set, cudaStream_t stream) {
  inputs.fill(set, stream);
  CUDA_CHECK(kernels::moe_scale(in(in_wr, set), static_cast<std::size_t>(n) * static_cast<std::size_t>(d),
                                static_cast<float>(moe::router_weight_bound(d)), stream));
  if (c.dominant_expert < 0) return;
  const int di = static_cast<int>(d);
  CUDA_CHECK(kernels::moe_set_column(in(in_x, set), static_cast<int>(T), di, di - 1, 1.0f, stream));
  CUDA_CHECK(kernels::moe_set_column(in(in_wr, set), static_cast<int>(n), di, di - 1, 0.0f, stream));
  const bf16 w = __float2bfloat16(kDominantWeight);
  CUDA_CHECK(
      cudaMemcpyAsync(in(in_wr, set) + c.dominant_expert * d + (d - 1), &w, sizeof w, cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));  // `w` lives on this stack frame
}

// Expert choice: every expert takes exactly T/E tokens, stored T/E rows apart (known on the host).
void MoeLayerWorkload::State::fixed_routing() {
  const int cap = static_cast<int>(T / c.experts);
  counts_host.assign(static_cast<std::size_t>(n), cap);
  offsets_host.resize(static_cast<std::size_t>(n) + 1);
  for (long e = 0; e <= n; ++e) offsets_host[e] = static_cast<int>(e * cap);
}

void MoeLayerWorkload::State::route_and_permute(cudaStream_t stream, int set, PhaseMarks& marks) {
  const int Ti = static_cast<int>(T), Ni = static_cast<int>(n), Ai = static_cast<int>(A);
  if (token_choice) {
    CUDA_CHECK(kernels::moe_top_k(probs.as<float>(), Ti, Ni, static_cast<int>(c.granularity), assign_expert.as<int>(),
                                  assign_score.as<float>(), stream));
    CUDA_CHECK(kernels::moe_histogram(assign_expert.as<int>(), Ai, Ni, expert_counts.as<int>(), stream));
    if (ours) {
      // Our kernels read the offsets on the device: a scan of the counts, and no host round trip.
      CUDA_CHECK(
          kernels::moe_offsets(temp.get(), &temp_bytes, expert_counts.as<int>(), expert_offsets.as<int>(), Ni, stream));
    } else {
      // The grouped and looped GEMMs take their sizes on the host: bring the counts back (a sync,
      // the one round trip). The grouped call's pointer arrays live in device memory: a kernel
      // builds them from the device counts, enqueued before the copy so it runs while the host
      // waits, and nothing goes back to the device.
      const std::vector<ExpertGemm> step_gemms = gemms(set);
      runner->build_device_pointers(0, step_gemms, expert_counts.as<int>(), stream);
      CUDA_CHECK(cudaMemcpyAsync(counts_host.data(), expert_counts.get(), counts_host.size() * sizeof(int),
                                 cudaMemcpyDeviceToHost, stream));
      CUDA_CHECK(cudaStreamSynchronize(stream));
      offsets_host[0] = 0;
      for (long e = 0; e < n; ++e) offsets_host[e + 1] = offsets_host[e] + counts_host[e];
      runner->set_routing(counts_host, offsets_host);
      runner->prepare_sizes(0, step_gemms);  // the sizes and group sizes, host only
    }
    marks.mark("routing");
    // Stable radix sort by expert: within an expert, assignments stay in token order.
    CUDA_CHECK(kernels::moe_sort_pairs(temp.get(), &temp_bytes, assign_expert.as<int>(), row_expert.as<int>(),
                                       iota.as<int>(), sort_values.as<int>(), Ai, kernels::moe_key_bits(Ni), stream));
    CUDA_CHECK(kernels::moe_rows_from_assignments(sort_values.as<int>(), assign_score.as<float>(), Ai,
                                                  static_cast<int>(c.granularity), row_token.as<int>(),
                                                  row_score.as<float>(), stream));
  } else {
    CUDA_CHECK(kernels::moe_expert_choice(probs.as<float>(), Ti, Ni,
                                          static_cast<int>(flops::kMoeExpertChoiceGroup / c.experts),
                                          row_token.as<int>(), row_score.as<float>(), row_expert.as<int>(), stream));
    marks.mark("routing");
  }
  // Each token's rows (for the combine and the gather's backward): rows sorted by token, stably,
  // so a token's rows stay in expert order.
  CUDA_CHECK(kernels::moe_sort_pairs(temp.get(), &temp_bytes, row_token.as<int>(), sort_keys.as<int>(), iota.as<int>(),
                                     token_rows.as<int>(), Ai, kernels::moe_key_bits(Ti), stream));
  CUDA_CHECK(kernels::moe_histogram(row_token.as<int>(), Ai, Ti, token_counts.as<int>(), stream));
  CUDA_CHECK(
      kernels::moe_offsets(temp.get(), &temp_bytes, token_counts.as<int>(), token_offsets.as<int>(), Ti, stream));
  CUDA_CHECK(kernels::moe_gather(in(in_x, set), row_token.as<int>(), Ai, static_cast<int>(d), xp.as<bf16>(), stream));
  marks.mark("permute");
}

void MoeLayerWorkload::State::run(cudaStream_t stream, int set, PhaseMarks& marks) {
  // The shared handle, bound to `stream` and to the workspace the result counts. Nothing below
  // rebinds it: cublasSetStream resets a handle's workspace to cuBLAS's default pool (cuBLAS docs,
  // cublasSetStream), memory the result would not count.
  cublasHandle_t hb = cublas_on(stream);
  const int di = static_cast<int>(d), Ti = static_cast<int>(T), Ni = static_cast<int>(n), Ai = static_cast<int>(A);
  const float one = 1.0f, zero = 0.0f;
  // Router: logits[T,N] = x wr^T in fp32 (routing decisions need more than bf16), then softmax.
  CUBLAS_CHECK(cublasGemmEx(hb, CUBLAS_OP_T, CUBLAS_OP_N, Ni, Ti, di, &one, in(in_wr, set), CUDA_R_16BF, di,
                            in(in_x, set), CUDA_R_16BF, di, &zero, probs.get(), CUDA_R_32F, Ni, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT));
  CUDA_CHECK(kernels::moe_softmax_forward(probs.as<float>(), probs.as<float>(), Ti, Ni, stream));
  marks.mark("router");
  route_and_permute(stream, set, marks);
  const int slot = token_choice ? 0 : set;
  const std::vector<ExpertGemm> g = gemms(set);
  const std::size_t hidden_elems = static_cast<std::size_t>(A) * f;
  runner->build_tile_map(stream);  // ours: the row tiles of this step's routing (others: nothing)
  runner->run(slot, 0, g[0], hb, stream);
  CUDA_CHECK(kernels::moe_gelu_forward(h.as<bf16>(), act.as<bf16>(), hidden_elems, stream));
  runner->run(slot, 1, g[1], hb, stream);
  marks.mark("expert_gemm");
  CUDA_CHECK(kernels::moe_combine(eo.as<bf16>(), row_score.as<float>(), token_offsets.as<int>(), token_rows.as<int>(),
                                  Ti, di, y.as<bf16>(), stream));
  marks.mark("combine");
  // Backward of L = sum(y * dy).
  CUDA_CHECK(kernels::moe_combine_backward(in(in_dy, set), eo.as<bf16>(), row_token.as<int>(), row_score.as<float>(),
                                           Ai, di, deo.as<bf16>(), d_score.as<float>(), stream));
  marks.mark("combine_bwd");
  runner->run(slot, 2, g[2], hb, stream);
  runner->run(slot, 3, g[3], hb, stream);
  CUDA_CHECK(kernels::moe_gelu_backward(dact.as<bf16>(), h.as<bf16>(), dact.as<bf16>(), hidden_elems, stream));
  runner->run(slot, 4, g[4], hb, stream);
  runner->run(slot, 5, g[5], hb, stream);
  marks.mark("expert_gemm_bwd");
  CUDA_CHECK(kernels::moe_gather_backward(deo.as<bf16>(), token_offsets.as<int>(), token_rows.as<int>(), Ti, di,
                                          dx.as<bf16>(), stream));
  marks.mark("permute_bwd");
  CUDA_CHECK(kernels::moe_softmax_backward(probs.as<float>(), token_offsets.as<int>(), token_rows.as<int>(),
                                           row_expert.as<int>(), d_score.as<float>(), dlogits.as<bf16>(), Ti, Ni,
                                           stream));
  // dwr[N,d] = dlogits^T x;  dx[T,d] += dlogits wr. (hb is still bound to `stream` and our workspace
  // by cublas_on above: calling cublasSetStream here would reset the workspace to cuBLAS's pool.)
  CUBLAS_CHECK(cublasGemmEx(hb, CUBLAS_OP_N, CUBLAS_OP_T, di, Ni, Ti, &one, in(in_x, set), CUDA_R_16BF, di,
                            dlogits.get(), CUDA_R_16BF, Ni, &zero, dwr.get(), CUDA_R_16BF, di, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT));
  CUBLAS_CHECK(cublasGemmEx(hb, CUBLAS_OP_N, CUBLAS_OP_N, di, Ti, Ni, &one, in(in_wr, set), CUDA_R_16BF, di,
                            dlogits.get(), CUDA_R_16BF, Ni, &one, dx.get(), CUDA_R_16BF, di, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT));
  marks.mark("router_bwd");
}

// ---------------------------------------------------------------------------------------------
MoeLayerWorkload::MoeLayerWorkload(const MoeConfig& config) : s_(std::make_unique<State>()) {
  throw_if_unsupported(moe_unsupported_reason(config));
  State& s = *s_;
  s.c = config;
  s.d = config.d;
  s.n = config.experts * config.granularity;
  s.f = 4 * config.d / config.granularity;
  s.T = config.tokens;
  s.A = config.tokens * config.granularity;
  s.token_choice = config.routing == moe::Routing::token_choice;
  s.ours = config.impl == MoeGemmImpl::ours;
  s.in_x = s.inputs.add("x", DType::bf16, static_cast<std::size_t>(s.T) * s.d);
  s.in_dy = s.inputs.add("dy", DType::bf16, static_cast<std::size_t>(s.T) * s.d);
  s.in_wr = s.inputs.add("wr", DType::bf16, static_cast<std::size_t>(s.n) * s.d);
  s.in_w1 = s.inputs.add("w1", DType::bf16, static_cast<std::size_t>(s.n) * s.f * s.d);
  s.in_w2 = s.inputs.add("w2", DType::bf16, static_cast<std::size_t>(s.n) * s.d * s.f);
}

MoeLayerWorkload::~MoeLayerWorkload() = default;

// One set as it lies in memory, its padding included.
double MoeLayerWorkload::input_bytes() const { return static_cast<double>(s_->inputs.set_bytes()); }

double MoeLayerWorkload::device_bytes(int input_sets) const {
  const State& s = *s_;
  const double T = static_cast<double>(s.T), A = static_cast<double>(s.A), n = static_cast<double>(s.n);
  const double d = static_cast<double>(s.d), f = static_cast<double>(s.f);
  const double per_token_expert = T * n * (4 + 2);                 // probs fp32 + dlogits bf16
  const double ints = A * 4 * 10 + (n + 1) * 8 + (T + 1) * 8;      // index arrays and scores
  const double rows = A * (3 * d + 3 * f) * 2;                     // xp, eo, deo; h, act, dact
  const double outputs = (2 * T * d + n * d + 2 * n * f * d) * 2;  // y, dx, dwr, dw1, dw2
  const double temp = 64.0 * (1 << 20) + A * 16;                   // CUB scratch (generous)
  const double pointers = 3.0 * kExpertGemms * n * 8 * std::max(1, input_sets);
  const double tile_map = s.ours
                              ? (n + 1) * 4.0 + 4.0 * static_cast<double>(kernels::moe_grouped_tile_map_ints(
                                                          kernels::moe_grouped_max_tiles(s.A, static_cast<int>(s.n))))
                              : 0.0;
  return s.inputs.device_bytes(input_sets) + per_token_expert + ints + rows + outputs + temp + pointers + tile_map +
         kBlasWorkspaceBytes;
}

void MoeLayerWorkload::allocate(int input_sets, cudaStream_t stream) {
  State& s = *s_;
  const std::size_t T = static_cast<std::size_t>(s.T), A = static_cast<std::size_t>(s.A);
  const std::size_t n = static_cast<std::size_t>(s.n), d = static_cast<std::size_t>(s.d);
  const std::size_t f = static_cast<std::size_t>(s.f);
  s.inputs.allocate(input_sets);
  s.probs = DeviceBuffer(T * n * 4);
  s.dlogits = DeviceBuffer(T * n * kBf16);
  for (DeviceBuffer* b : {&s.iota, &s.sort_keys, &s.sort_values, &s.row_token, &s.row_expert, &s.token_rows}) {
    *b = DeviceBuffer(A * 4);
  }
  for (DeviceBuffer* b : {&s.row_score, &s.d_score}) *b = DeviceBuffer(A * 4);
  if (s.token_choice) {
    s.assign_expert = DeviceBuffer(A * 4);
    s.assign_score = DeviceBuffer(A * 4);
  }
  s.expert_counts = DeviceBuffer(n * 4);
  s.token_counts = DeviceBuffer(T * 4);
  s.token_offsets = DeviceBuffer((T + 1) * 4);
  // CUB scratch: the largest of the sorts (by expert, by token) and the scan.
  const int Ai = static_cast<int>(A), Ti = static_cast<int>(T), Ni = static_cast<int>(n);
  std::size_t need = 0, b = 0;
  CUDA_CHECK(
      kernels::moe_sort_pairs(nullptr, &b, nullptr, nullptr, nullptr, nullptr, Ai, kernels::moe_key_bits(Ni), stream));
  need = std::max(need, b);
  CUDA_CHECK(
      kernels::moe_sort_pairs(nullptr, &b, nullptr, nullptr, nullptr, nullptr, Ai, kernels::moe_key_bits(Ti), stream));
  need = std::max(need, b);
  CUDA_CHECK(kernels::moe_offsets(nullptr, &b, nullptr, nullptr, Ti, stream));
  need = std::max(need, b);
  CUDA_CHECK(kernels::moe_offsets(nullptr, &b, nullptr, nullptr, Ni, stream));  // ours: expert offsets
  need = std::max(need, b);
  s.temp_bytes = need;
  s.temp = DeviceBuffer(need);
  s.xp = DeviceBuffer(A * d * kBf16);
  s.eo = DeviceBuffer(A * d * kBf16);
  s.deo = DeviceBuffer(A * d * kBf16);
  s.h = DeviceBuffer(A * f * kBf16);
  s.act = DeviceBuffer(A * f * kBf16);
  s.dact = DeviceBuffer(A * f * kBf16);
  s.y = DeviceBuffer(T * d * kBf16);
  s.dx = DeviceBuffer(T * d * kBf16);
  s.dwr = DeviceBuffer(n * d * kBf16);
  s.dw1 = DeviceBuffer(n * f * d * kBf16);
  s.dw2 = DeviceBuffer(n * d * f * kBf16);
  CUDA_CHECK(kernels::moe_iota(s.iota.as<int>(), Ai, stream));
  for (int set = 0; set < input_sets; ++set) s.fill_set(set, stream);
  s.counts_host.assign(n, 0);
  s.offsets_host.assign(n + 1, 0);
  const int slots = s.token_choice ? 1 : input_sets;
  s.runner = std::make_unique<ExpertGemmRunner>(s.c.impl, Ni, slots, kExpertGemms);
  (void)cublas_on(stream);  // created now, not inside the first timed launch
  if (s.ours) {
    s.expert_offsets = DeviceBuffer((n + 1) * sizeof(int));
    s.runner->set_device_offsets(s.expert_offsets.as<int>(), s.A);
  }
  if (!s.token_choice) {
    s.fixed_routing();
    s.runner->set_routing(s.counts_host, s.offsets_host);
    for (int set = 0; set < input_sets; ++set) s.runner->prepare(set, s.gemms(set), stream);
    if (s.ours) {  // fixed: uploaded once (token choice scans the counts on the device each step)
      CUDA_CHECK(cudaMemcpyAsync(s.expert_offsets.get(), s.offsets_host.data(), (n + 1) * sizeof(int),
                                 cudaMemcpyHostToDevice, stream));
    }
  }
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void MoeLayerWorkload::launch(cudaStream_t stream, int set) {
  PhaseMarks none;
  s_->run(stream, set, none);
}

void MoeLayerWorkload::launch_marked(cudaStream_t stream, int set, PhaseMarks& marks) { s_->run(stream, set, marks); }

// Token choice copies the counts to the host each step, except with our grouped GEMM.
bool MoeLayerWorkload::synchronizes() const { return s_->token_choice && !s_->ours; }

const std::vector<int>& MoeLayerWorkload::expert_counts() const { return s_->verified_counts; }

double MoeLayerWorkload::load_imbalance() const {
  std::vector<long> c(s_->verified_counts.begin(), s_->verified_counts.end());
  return moe::load_imbalance(c);
}

std::map<std::string, double> MoeLayerWorkload::measured_counters() const {
  const std::vector<int>& c = s_->verified_counts;
  if (c.empty()) return {};
  return {{"load_imbalance", load_imbalance()}, {"max_expert_tokens", *std::max_element(c.begin(), c.end())}};
}

std::string MoeLayerWorkload::describe() const {
  const State& s = *s_;
  std::string out;
  if (s.token_choice && !s.verified_counts.empty()) {
    out =
        fmt::format("load imbalance (max/mean tokens per expert) {:.3f}; {}", load_imbalance(),
                    s.ours ? "counts stay on the device (no host round trip)" : "counts copied to the host each step");
  } else if (!s.token_choice) {
    out = fmt::format("expert choice: {} tokens per expert", s.T / s.c.experts);
  }
  return out;
}

// Verification on the real shape (a whole-layer fp64 reference would take hours on the host):
// verify() runs one step on fresh inputs with every output poisoned with NaN, then these checks,
// in this order, each a function of Checks below:
//  - device_offsets (our grouped GEMM with token choice only): the sizes its kernels were given;
//  - outputs_finite: every output (y, dx, dwr, dw1, dw2) written and finite;
//  - routing_structure: expert-contiguous rows, tokens in order within an expert, per-token lists
//    consistent, expert choice exactly T/E tokens per expert, token-choice counts equal to those
//    the GEMMs were given;
//  - routing_decisions, exactly: the reference routes the GPU's own fp32 probabilities (copied
//    back) with the same tie rule, so any difference is a bug, not rounding;
//  - sampled_tokens: on sampled tokens, against the fp64 reference (moe_reference.hpp) from the
//    bf16 inputs: router probabilities, y, dx (expert and router paths) and the router's dlogits;
//  - expert_weight_grads: sampled entries of dW1 and dW2 of a few experts, summed over all of the
//    expert's rows (with the GPU's routing and scores, checked by the two before);
//  - router_weight_grad: sampled entries of dwr = dlogits^T x, from the GPU's dlogits (checked on
//    sampled tokens).
// The first three stop at the first thing wrong and say what it is. The last three are relative
// errors ||gpu - ref|| / ||ref|| (verify_error.hpp) against the bf16 tolerance.
struct MoeLayerWorkload::State::Checks {
  struct Output {
    const char* name;
    const DeviceBuffer* buf;
    std::size_t elems;
  };
  using Weights = std::pair<std::vector<double>, std::vector<double>>;  // one expert's W1 [f,d], W2 [d,f]

  explicit Checks(State& state)
      : s(state),
        T(static_cast<std::size_t>(state.T)),
        A(static_cast<std::size_t>(state.A)),
        n(static_cast<std::size_t>(state.n)),
        d(static_cast<std::size_t>(state.d)),
        f(static_cast<std::size_t>(state.f)) {}

  std::vector<Output> outputs() const {
    return {{"y", &s.y, T * d},
            {"dx", &s.dx, T * d},
            {"dwr", &s.dwr, n * d},
            {"dw1", &s.dw1, n * f * d},
            {"dw2", &s.dw2, n * d * f}};
  }

  std::string device_offsets();
  std::string outputs_finite(cudaStream_t stream) const;
  std::string routing_structure();
  std::string routing_decisions(const std::set<std::size_t>& tokens) const;
  void sampled_tokens(const std::set<std::size_t>& tokens, double tolerance, ErrorReport& report);
  ErrorSum expert_weight_grads(const std::set<std::size_t>& experts, std::mt19937_64& rng);
  ErrorSum router_weight_grad(const std::set<std::size_t>& experts, std::mt19937_64& rng) const;

  void read_inputs();
  const Weights& expert_weights(long e);

  State& s;
  const std::size_t T, A, n, d, f;
  // The routing, read back by routing_structure(): each permuted row's token, expert and score;
  // token t's rows are tok_rows[tok_off[t]] .. tok_rows[tok_off[t + 1] - 1]; rows per expert.
  std::vector<int> row_token, row_expert, tok_off, tok_rows, counts;
  std::vector<float> row_score;
  // The inputs the samples read (bf16 bits), read back by read_inputs(); the weights of each
  // expert a check uses, decoded when first used.
  std::vector<std::uint16_t> x, dy, wr;
  std::map<long, Weights> weights;
};

// Our grouped GEMM with token choice: the sizes its kernels were given never reached the host
// during the step. They are fetched here, so that the checks compare the GEMMs' offsets with the
// routing.
std::string MoeLayerWorkload::State::Checks::device_offsets() {
  const auto offsets = fetch<int>(s.expert_offsets.get(), 0, n + 1);
  if (offsets[0] != 0) return fmt::format("the device expert offsets start at {}, not 0", offsets[0]);
  for (std::size_t e = 0; e < n; ++e) {
    s.offsets_host[e] = offsets[e];
    s.counts_host[e] = offsets[e + 1] - offsets[e];
  }
  s.offsets_host[n] = offsets[n];
  return "";
}

std::string MoeLayerWorkload::State::Checks::outputs_finite(cudaStream_t stream) const {
  DeviceBuffer count(sizeof(unsigned long long));
  for (const Output& o : outputs()) {
    CUDA_CHECK(cudaMemsetAsync(count.get(), 0, count.bytes(), stream));
    CUDA_CHECK(kernels::count_nonfinite(DType::bf16, o.buf->get(), o.elems, count.as<unsigned long long>(), stream));
    unsigned long long bad = 0;
    CUDA_CHECK(cudaMemcpyAsync(&bad, count.get(), sizeof bad, cudaMemcpyDeviceToHost, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    if (bad) {
      return fmt::format("{} of {} elements of {} are NaN or Inf (unwritten or overflowed)", bad, o.elems, o.name);
    }
  }
  return "";
}

std::string MoeLayerWorkload::State::Checks::routing_structure() {
  row_token = fetch<int>(s.row_token.get(), 0, A);
  row_expert = fetch<int>(s.row_expert.get(), 0, A);
  row_score = fetch<float>(s.row_score.get(), 0, A);
  tok_off = fetch<int>(s.token_offsets.get(), 0, T + 1);
  tok_rows = fetch<int>(s.token_rows.get(), 0, A);
  counts.assign(n, 0);
  for (std::size_t r = 0; r < A; ++r) {
    const int e = row_expert[r];
    const bool ordered = r == 0 || row_expert[r - 1] < e || (row_expert[r - 1] == e && row_token[r - 1] < row_token[r]);
    if (e < 0 || e >= static_cast<int>(n) || row_token[r] < 0 || row_token[r] >= static_cast<int>(T) || !ordered) {
      return fmt::format("permuted row {} (expert {}, token {}) is out of range or out of order", r, e, row_token[r]);
    }
    ++counts[e];
  }
  s.verified_counts = counts;
  for (std::size_t e = 0; e < n; ++e) {
    const int want = s.token_choice ? s.counts_host[e] : static_cast<int>(T / s.c.experts);
    if (counts[e] != want) return fmt::format("expert {} has {} rows, the GEMMs were given {}", e, counts[e], want);
  }
  if (tok_off[0] != 0 || tok_off[T] != static_cast<int>(A)) {
    return "the per-token row lists do not cover every row exactly once";
  }
  for (std::size_t t = 0; t < T; ++t) {
    for (int i = tok_off[t]; i < tok_off[t + 1]; ++i) {
      if (row_token[tok_rows[i]] != static_cast<int>(t) || (i > tok_off[t] && tok_rows[i - 1] >= tok_rows[i])) {
        return fmt::format("token {}'s row list is wrong", t);
      }
    }
  }
  return "";
}

void MoeLayerWorkload::State::Checks::read_inputs() {
  x = fetch<std::uint16_t>(s.in(s.in_x, 0), 0, T * d);
  dy = fetch<std::uint16_t>(s.in(s.in_dy, 0), 0, T * d);
  wr = fetch<std::uint16_t>(s.in(s.in_wr, 0), 0, n * d);
}

const MoeLayerWorkload::State::Checks::Weights& MoeLayerWorkload::State::Checks::expert_weights(long e) {
  auto it = weights.find(e);
  if (it != weights.end()) return it->second;
  const auto w1 = fetch<std::uint16_t>(s.in(s.in_w1, 0), static_cast<std::size_t>(e) * f * d, f * d);
  const auto w2 = fetch<std::uint16_t>(s.in(s.in_w2, 0), static_cast<std::size_t>(e) * d * f, d * f);
  Weights p{std::vector<double>(f * d), std::vector<double>(d * f)};
  for (std::size_t i = 0; i < f * d; ++i) p.first[i] = decode_bf16(w1[i]);
  for (std::size_t i = 0; i < d * f; ++i) p.second[i] = decode_bf16(w2[i]);
  return weights.emplace(e, std::move(p)).first->second;
}

// Sampled tokens (token choice) or their groups (expert choice).
std::string MoeLayerWorkload::State::Checks::routing_decisions(const std::set<std::size_t>& tokens) const {
  const int take = static_cast<int>(flops::kMoeExpertChoiceGroup / s.c.experts);
  const std::size_t group = static_cast<std::size_t>(flops::kMoeExpertChoiceGroup);
  std::set<std::size_t> groups_checked;
  for (std::size_t t : tokens) {
    if (s.token_choice) {
      const auto p = fetch<float>(s.probs.get(), t * n, n);
      const std::vector<double> pd(p.begin(), p.end());
      std::vector<long> want = moe::top_k_experts(pd.data(), static_cast<long>(n), s.c.granularity);
      std::sort(want.begin(), want.end());
      std::vector<long> got;
      for (int i = tok_off[t]; i < tok_off[t + 1]; ++i) got.push_back(row_expert[tok_rows[i]]);
      if (got != want) {
        return fmt::format("token {} was routed to other experts than its top-{} probabilities", t, s.c.granularity);
      }
    } else if (groups_checked.insert(t / group).second) {
      const std::size_t g = t / group;
      const auto p = fetch<float>(s.probs.get(), g * group * n, group * n);
      const std::vector<double> pd(p.begin(), p.end());
      for (std::size_t e = 0; e < n; ++e) {
        const auto want = moe::expert_choice_tokens(pd.data(), static_cast<long>(group), static_cast<long>(n),
                                                    static_cast<long>(e), take);
        for (int i = 0; i < take; ++i) {
          const std::size_t r = e * (T / s.c.experts) + g * take + i;
          if (row_token[r] != static_cast<int>(g * group + want[i])) {
            return fmt::format("expert {} chose other tokens of group {} than its top {}", e, g, take);
          }
        }
      }
    }
  }
  return "";
}

// Router probabilities, y, dx and dlogits of the sampled tokens against the fp64 reference.
void MoeLayerWorkload::State::Checks::sampled_tokens(const std::set<std::size_t>& tokens, double tolerance,
                                                     ErrorReport& report) {
  ErrorSum p_err, y_err, dx_err, dl_err;
  std::vector<double> hbuf(f), out(d), dout(d);
  for (std::size_t t : tokens) {
    std::vector<double> logits(n), probs(n), dprobs(n, 0.0), dlogits(n), yr(d, 0.0), dxr(d, 0.0), xt(d), dyt(d);
    for (std::size_t j = 0; j < d; ++j) {
      xt[j] = bf(x, t * d + j);
      dyt[j] = bf(dy, t * d + j);
    }
    for (std::size_t e = 0; e < n; ++e) {
      double acc = 0;
      for (std::size_t j = 0; j < d; ++j) acc += xt[j] * bf(wr, e * d + j);
      logits[e] = acc;
    }
    moe::softmax(logits.data(), static_cast<long>(n), probs.data());
    const auto pg = fetch<float>(s.probs.get(), t * n, n);
    for (std::size_t e = 0; e < n; ++e) p_err.add(pg[e], probs[e]);
    for (int i = tok_off[t]; i < tok_off[t + 1]; ++i) {
      const long e = row_expert[tok_rows[i]];
      const Weights& w = expert_weights(e);
      moe::expert_row_forward(w.first.data(), w.second.data(), static_cast<long>(d), static_cast<long>(f), xt.data(),
                              hbuf.data(), out.data());
      const double score = probs[e];
      double ds = 0;
      for (std::size_t c = 0; c < d; ++c) {
        yr[c] += score * out[c];
        ds += dyt[c] * out[c];
        dout[c] = score * dyt[c];
      }
      dprobs[e] = ds;
      moe::expert_row_backward_input(w.first.data(), w.second.data(), static_cast<long>(d), static_cast<long>(f),
                                     hbuf.data(), dout.data(), dxr.data());
    }
    moe::softmax_backward(probs.data(), dprobs.data(), static_cast<long>(n), dlogits.data());
    for (std::size_t e = 0; e < n; ++e) {
      for (std::size_t j = 0; j < d; ++j) dxr[j] += dlogits[e] * bf(wr, e * d + j);
    }
    const auto yg = fetch<std::uint16_t>(s.y.get(), t * d, d);
    const auto dxg = fetch<std::uint16_t>(s.dx.get(), t * d, d);
    const auto dlg = fetch<std::uint16_t>(s.dlogits.get(), t * n, n);
    for (std::size_t c = 0; c < d; ++c) {
      y_err.add(bf(yg, c), yr[c]);
      dx_err.add(bf(dxg, c), dxr[c]);
    }
    for (std::size_t e = 0; e < n; ++e) dl_err.add(bf(dlg, e), dlogits[e]);
  }
  report.add("probs", p_err, tolerance);
  report.add("y", y_err, tolerance);
  report.add("dx", dx_err, tolerance);
  report.add("dlogits", dl_err, tolerance);
}

// Nine sampled entries each of dW1 and dW2 of every expert in `experts`, each summed over all of
// the expert's rows.
ErrorSum MoeLayerWorkload::State::Checks::expert_weight_grads(const std::set<std::size_t>& experts,
                                                              std::mt19937_64& rng) {
  std::uniform_int_distribution<std::size_t> pick_f(0, f - 1), pick_d(0, d - 1);
  ErrorSum w_err;
  for (std::size_t e : experts) {
    const Weights& w = expert_weights(static_cast<long>(e));
    std::vector<std::size_t> is, cs, js;
    for (int q = 0; q < 3; ++q) {
      is.push_back(pick_f(rng));
      cs.push_back(pick_d(rng));
      js.push_back(pick_d(rng));
    }
    std::vector<double> dw1r(9, 0.0), dw2r(9, 0.0);
    const std::size_t begin = static_cast<std::size_t>(s.token_choice ? s.offsets_host[e] : e * (T / s.c.experts));
    for (std::size_t r = begin; r < begin + static_cast<std::size_t>(counts[e]); ++r) {
      const std::size_t t = static_cast<std::size_t>(row_token[r]);
      const double score = row_score[r];
      for (std::size_t a = 0; a < 3; ++a) {
        const std::size_t i = is[a];
        double hv = 0, da = 0;
        for (std::size_t j = 0; j < d; ++j) hv += w.first[i * d + j] * bf(x, t * d + j);
        for (std::size_t c = 0; c < d; ++c) da += w.second[c * f + i] * score * bf(dy, t * d + c);
        const double dh = da * moe::gelu_derivative(hv), act = moe::gelu(hv);
        for (std::size_t b = 0; b < 3; ++b) {
          dw2r[a * 3 + b] += score * bf(dy, t * d + cs[b]) * act;
          dw1r[a * 3 + b] += dh * bf(x, t * d + js[b]);
        }
      }
    }
    for (std::size_t a = 0; a < 3; ++a) {
      for (std::size_t b = 0; b < 3; ++b) {
        const double g2 = decode_bf16(fetch<std::uint16_t>(s.dw2.get(), e * d * f + cs[b] * f + is[a], 1)[0]);
        const double g1 = decode_bf16(fetch<std::uint16_t>(s.dw1.get(), e * f * d + is[a] * d + js[b], 1)[0]);
        w_err.add(g2, dw2r[a * 3 + b]);
        w_err.add(g1, dw1r[a * 3 + b]);
      }
    }
  }
  return w_err;
}

// Three sampled entries of dwr per expert in `experts`, from the GPU's dlogits columns.
ErrorSum MoeLayerWorkload::State::Checks::router_weight_grad(const std::set<std::size_t>& experts,
                                                             std::mt19937_64& rng) const {
  std::uniform_int_distribution<std::size_t> pick_d(0, d - 1);
  ErrorSum r_err;
  for (std::size_t e : experts) {
    std::vector<std::uint16_t> col(T);
    CUDA_CHECK(
        cudaMemcpy2D(col.data(), kBf16, s.dlogits.as<char>() + e * kBf16, n * kBf16, kBf16, T, cudaMemcpyDeviceToHost));
    for (int q = 0; q < 3; ++q) {
      const std::size_t j = pick_d(rng);
      double ref = 0;
      for (std::size_t t = 0; t < T; ++t) ref += bf(col, t) * bf(x, t * d + j);
      const double got = decode_bf16(fetch<std::uint16_t>(s.dwr.get(), e * d + j, 1)[0]);
      r_err.add(got, ref);
    }
  }
  return r_err;
}

Verification MoeLayerWorkload::verify(cudaStream_t stream) {
  State& s = *s_;
  State::Checks checks(s);
  Verification v;
  v.tolerance = dtype_tolerance(DType::bf16);
  const auto failed = [&v](std::string why) {
    v.detail = std::move(why);
    return v;
  };
  for (const State::Checks::Output& o : checks.outputs()) {
    CUDA_CHECK(cudaMemsetAsync(o.buf->get(), 0xFF, o.elems * kBf16, stream));
  }
  s.fill_set(0, stream);
  launch(stream, 0);
  CUDA_CHECK(cudaStreamSynchronize(stream));
  if (s.ours && s.token_choice) {
    if (std::string why = checks.device_offsets(); !why.empty()) return failed(why);
  }
  if (std::string why = checks.outputs_finite(stream); !why.empty()) return failed(why);
  if (std::string why = checks.routing_structure(); !why.empty()) return failed(why);
  checks.read_inputs();

  // The sampled tokens: the first, the last and random others, fewer at large d (each costs a
  // host forward and backward through every expert it visits).
  const std::size_t T = checks.T, n = checks.n, d = checks.d;
  std::mt19937_64 rng(fresh_seed());
  const std::size_t samples = std::min<std::size_t>(T, d >= 4096 ? 3 : d >= 2048 ? 4 : 8);
  std::set<std::size_t> picked = {0, T - 1};
  std::uniform_int_distribution<std::size_t> pick(0, T - 1);
  while (picked.size() < samples) picked.insert(pick(rng));
  if (std::string why = checks.routing_decisions(picked); !why.empty()) return failed(why);

  ErrorReport report;
  checks.sampled_tokens(picked, v.tolerance, report);
  // The experts whose weight gradients are sampled: the first, the last and the busiest.
  std::set<std::size_t> experts = {0, n - 1};
  experts.insert(
      static_cast<std::size_t>(std::max_element(checks.counts.begin(), checks.counts.end()) - checks.counts.begin()));
  const ErrorSum w_err = checks.expert_weight_grads(experts, rng);
  report.add("dW1/dW2", w_err, v.tolerance);
  report.add("dwr", checks.router_weight_grad(experts, rng), v.tolerance);
  return verification_of(report, fmt::format("routing exact, {} sampled tokens, {} dW entries of {} experts, "
                                             "all outputs finite",
                                             picked.size(), w_err.count(), experts.size()));
}

std::unique_ptr<Workload> make_moe_workload(const MoeConfig& config) {
  return std::make_unique<MoeLayerWorkload>(config);
}

}  // namespace wflops
