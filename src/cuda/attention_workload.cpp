#include "cuda/attention_workload.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "attention/flash_attention_bwd.cuh"
#include "attention/flash_attention_fwd.cuh"
#include "common/count_nonfinite.cuh"
#include "cuda/attention_unfused.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/cudnn_sdpa.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/rotated_inputs.hpp"
#include "cuda/verify_report.hpp"
#include "model/flops.hpp"
#include "numeric_formats.hpp"
#include "reference/attention_reference.hpp"
#include "reference/verify_error.hpp"

namespace wflops {

namespace {

// Up to this sequence length the verification recomputes whole (batch, head) slices on the host;
// above it, sampled rows (the first, the last and random ones).
constexpr long kFullReferenceSeq = 512;
constexpr int kSampledRows = 40;

std::vector<long> sample_rows(long seq, std::mt19937_64& rng) {
  std::set<long> picked = {0, seq - 1};
  if (seq <= kFullReferenceSeq) {
    for (long i = 0; i < seq; ++i) picked.insert(i);
  } else {
    std::uniform_int_distribution<long> pick(0, seq - 1);
    while (static_cast<long>(picked.size()) < kSampledRows + 2) picked.insert(pick(rng));
  }
  return {picked.begin(), picked.end()};
}

// Elements of a device array as doubles.
std::vector<double> to_host(DType dtype, const void* data, std::size_t offset, std::size_t count) {
  const std::size_t e = dtype_bytes(dtype);
  std::vector<unsigned char> raw(count * e);
  CUDA_CHECK(cudaMemcpy(raw.data(), static_cast<const char*>(data) + offset * e, raw.size(), cudaMemcpyDeviceToHost));
  std::vector<double> out(count);
  for (std::size_t i = 0; i < count; ++i) out[i] = decode_element(dtype, raw.data(), i);
  return out;
}

// Rows `rows` of a [seq][width] slice held in `all`.
std::vector<double> pick_rows(const std::vector<double>& all, const std::vector<long>& rows, long width) {
  std::vector<double> out;
  out.reserve(rows.size() * static_cast<std::size_t>(width));
  for (long r : rows) out.insert(out.end(), all.begin() + r * width, all.begin() + (r + 1) * width);
  return out;
}

void append(std::vector<double>& to, const std::vector<double>& from) { to.insert(to.end(), from.begin(), from.end()); }

class AttentionWorkload final : public Workload {
 public:
  explicit AttentionWorkload(const AttentionCase& c) : c_(c) {
    const auto& d = c_.dims;
    elems_ = static_cast<std::size_t>(d.rows()) * static_cast<std::size_t>(d.head_dim);
    tensor_ = align_up(elems_ * dtype_bytes(c_.dtype));
    stats_ = align_up(static_cast<std::size_t>(d.rows()) * sizeof(float));
    // One input set: Q, K, V (+ dO, and the forward's O and L for a backward, which fill_inputs()
    // computes from the set's own Q, K, V).
    q_ = inputs_.add("Q", c_.dtype, elems_);
    k_ = inputs_.add("K", c_.dtype, elems_);
    v_ = inputs_.add("V", c_.dtype, elems_);
    if (backward()) {
      do_ = inputs_.add("dO", c_.dtype, elems_);
      o_ = inputs_.add("O", c_.dtype, elems_, RotatedInputs::Fill::by_workload);
      l_ = inputs_.add("L", DType::fp32, static_cast<std::size_t>(d.rows()), RotatedInputs::Fill::by_workload);
    }
  }

  // One set as it lies in memory, its padding included.
  double input_bytes() const override { return static_cast<double>(inputs_.set_bytes()); }
  double device_bytes(int sets) const override {
    return inputs_.device_bytes(sets) + static_cast<double>(fixed_bytes());
  }

  void allocate(int sets, cudaStream_t stream) override {
    throw_if_unsupported(attention_unsupported_reason(c_));
    inputs_.allocate(sets);
    if (backward()) {
      grads_ = DeviceBuffer(3 * tensor_);
    } else {
      out_ = DeviceBuffer(tensor_);
      lse_ = DeviceBuffer(stats_);
    }
    if (c_.impl == AttentionImpl::unfused) {
      const std::size_t score = align_up(static_cast<std::size_t>(c_.dims.rows()) *
                                         static_cast<std::size_t>(c_.dims.seq) * dtype_bytes(c_.dtype));
      scores_ = DeviceBuffer(score);
      probs_ = DeviceBuffer(score);
      row_dot_ = DeviceBuffer(stats_);
      if (backward()) unfused_lse_ = DeviceBuffer(stats_);
    } else if (c_.impl == AttentionImpl::cudnn) {
      // Builds the graph and chooses the engine once per shape (kept across repetitions). A backward
      // also keeps cuDNN's forward, which makes each input set's O and Stats (= L); the two run one
      // after the other on the stream and share the workspace.
      sdpa_ = std::make_unique<cudnn::SdpaForward>(c_.dtype, c_.dims);
      std::size_t ws = sdpa_->workspace_bytes();
      if (backward()) {
        sdpa_bwd_ = std::make_unique<cudnn::SdpaBackward>(c_.dtype, c_.dims);
        ws = std::max(ws, sdpa_bwd_->workspace_bytes());
      }
      workspace_ = DeviceBuffer(ws);
    } else if (backward()) {
      workspace_ = DeviceBuffer(kernels::flash_attention_backward_workspace_bytes(c_.dims));
    }
    for (int s = 0; s < sets; ++s) fill_inputs(s, stream);
    CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  Verification verify(cudaStream_t stream) override {
    fill_inputs(0, stream);
    if (backward()) {
      CUDA_CHECK(cudaMemsetAsync(grads_.get(), 0xFF, grads_.bytes(), stream));  // NaN
    } else {
      CUDA_CHECK(cudaMemsetAsync(out_.get(), 0xFF, out_.bytes(), stream));
      CUDA_CHECK(cudaMemsetAsync(lse_.get(), 0xFF, lse_.bytes(), stream));
    }
    launch(stream, 0);
    CUDA_CHECK(cudaStreamSynchronize(stream));
    return backward() ? check_backward(stream) : check_forward(stream);
  }

  void launch(cudaStream_t stream, int set) override {
    PhaseMarks none;
    launch_marked(stream, set, none);
  }
  bool has_phases() const override { return c_.impl == AttentionImpl::unfused; }
  void launch_marked(cudaStream_t stream, int set, PhaseMarks& marks) override {
    if (backward()) {
      run_backward(stream, set, marks);
    } else {
      run_forward(stream, q(set), k(set), v(set), out_.get(), lse_.as<float>(), marks);
    }
  }

  // cuDNN's engine states its workspace only once its plan is built here: mem_bytes then becomes
  // what one input set really takes, that workspace included (the registered figure leaves it out).
  std::map<std::string, double> measured_counters() const override {
    if (c_.impl != AttentionImpl::cudnn || !sdpa_) return {};
    // device_bytes() counts the backward's scratch, which workspace_ (the engine's part + scratch) holds.
    const std::size_t scratch = backward() ? cudnn::SdpaBackward::scratch_bytes(c_.dims) : 0;
    const double workspace = static_cast<double>(workspace_.bytes());
    return {{"mem_bytes", device_bytes(1) - static_cast<double>(scratch) + workspace}};
  }

  std::string describe() const override {
    if (sdpa_bwd_) return sdpa_bwd_->describe();
    if (sdpa_) return sdpa_->describe();
    if (c_.impl == AttentionImpl::unfused && backward() && inputs_.sets() > 1) {
      return "every input set reuses the probabilities P of set 0";
    }
    return "";
  }

 private:
  bool backward() const { return c_.pass == AttentionPass::backward; }

  // Device memory besides the input sets.
  std::size_t fixed_bytes() const {
    std::size_t bytes = backward() ? 3 * tensor_ : tensor_ + stats_;
    if (c_.impl == AttentionImpl::unfused) {
      bytes += 2 * align_up(static_cast<std::size_t>(c_.dims.rows()) * static_cast<std::size_t>(c_.dims.seq) *
                            dtype_bytes(c_.dtype));
      bytes += stats_ * (backward() ? 2 : 1);
    } else if (c_.impl == AttentionImpl::fused && backward()) {
      bytes += kernels::flash_attention_backward_workspace_bytes(c_.dims);
    } else if (c_.impl == AttentionImpl::cudnn && backward()) {
      // The fp32 dQ accumulator and row dot wflops places in the workspace; the engine's own part is
      // known only once the plan is built on the GPU.
      bytes += cudnn::SdpaBackward::scratch_bytes(c_.dims);
    }
    return bytes;
  }

  void* q(int set) const { return inputs_.ptr(q_, set); }
  void* k(int set) const { return inputs_.ptr(k_, set); }
  void* v(int set) const { return inputs_.ptr(v_, set); }
  void* d_o(int set) const { return inputs_.ptr(do_, set); }
  void* o(int set) const { return inputs_.ptr(o_, set); }  // the forward's output (backward only)
  float* lse(int set) const { return inputs_.as<float>(l_, set); }
  void* dq() const { return grads_.get(); }
  void* dk() const { return static_cast<char*>(grads_.get()) + tensor_; }
  void* dv() const { return static_cast<char*>(grads_.get()) + 2 * tensor_; }

  UnfusedScratch scratch(float* lse_out) const { return {scores_.get(), probs_.get(), lse_out, row_dot_.as<float>()}; }

  void run_forward(cudaStream_t stream, const void* qp, const void* kp, const void* vp, void* op, float* lp,
                   PhaseMarks& marks) {
    if (c_.impl == AttentionImpl::unfused) {
      unfused_attention_forward(c_.dtype, qp, kp, vp, op, scratch(lp), c_.dims, stream, marks);
    } else if (c_.impl == AttentionImpl::cudnn) {
      sdpa_->run(stream, qp, kp, vp, op, lp, workspace_.get());
    } else {
      CUDA_CHECK(kernels::flash_attention_forward(c_.dtype, qp, kp, vp, op, lp, c_.dims, stream));
    }
  }

  void run_backward(cudaStream_t stream, int set, PhaseMarks& marks) {
    if (c_.impl == AttentionImpl::unfused) {
      unfused_attention_backward(c_.dtype, q(set), k(set), v(set), o(set), d_o(set), dq(), dk(), dv(),
                                 scratch(unfused_lse_.as<float>()), c_.dims, stream, marks);
    } else if (c_.impl == AttentionImpl::cudnn) {
      sdpa_bwd_->run(stream, q(set), k(set), v(set), o(set), lse(set), d_o(set), dq(), dk(), dv(), workspace_.get());
    } else {
      CUDA_CHECK(kernels::flash_attention_backward(c_.dtype, q(set), k(set), v(set), o(set), d_o(set), lse(set), dq(),
                                                   dk(), dv(), workspace_.get(), c_.dims, stream));
    }
  }

  // Fresh random inputs for set `set`; for a backward, also the forward's O and L (and, for the
  // unfused path, its P, which the backward reads; set 0's is the one kept).
  void fill_inputs(int set, cudaStream_t stream) {
    inputs_.fill(set, stream);
    if (!backward()) return;
    PhaseMarks none;
    float* lp = c_.impl == AttentionImpl::unfused ? unfused_lse_.as<float>() : lse(set);
    run_forward(stream, q(set), k(set), v(set), o(set), lp, none);
    if (c_.impl == AttentionImpl::unfused) {
      CUDA_CHECK(cudaMemcpyAsync(lse(set), lp, stats_, cudaMemcpyDeviceToDevice, stream));
      if (set != 0) run_forward(stream, q(0), k(0), v(0), o(0), lp, none);  // keep set 0's P
    }
  }

  unsigned long long count_bad(DType dtype, const void* data, std::size_t count, cudaStream_t stream) {
    DeviceBuffer counter(sizeof(unsigned long long));
    CUDA_CHECK(cudaMemsetAsync(counter.get(), 0, counter.bytes(), stream));
    CUDA_CHECK(kernels::count_nonfinite(dtype, data, count, counter.as<unsigned long long>(), stream));
    unsigned long long bad = 0;
    CUDA_CHECK(cudaMemcpyAsync(&bad, counter.get(), sizeof bad, cudaMemcpyDeviceToHost, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    return bad;
  }

  std::vector<long> sample_slices() const {
    std::set<long> s = {0, c_.dims.slices() - 1};
    return {s.begin(), s.end()};
  }

  AttentionProblem problem() const {
    return {c_.dims.seq, c_.dims.head_dim, c_.dims.causal, 1.0 / std::sqrt(static_cast<double>(c_.dims.head_dim))};
  }

  // One (batch, head) slice of set 0 on the host: Q, K, V, an output O [s, d] and its log-sum-exp L [s].
  struct HostSlice {
    std::vector<double> q, k, v, o, l;
  };
  HostSlice host_slice(long slice, const void* o_dev, const void* l_dev) const {
    const long s = c_.dims.seq;
    const std::size_t n = static_cast<std::size_t>(s * c_.dims.head_dim), at = static_cast<std::size_t>(slice) * n;
    return {to_host(c_.dtype, q(0), at, n), to_host(c_.dtype, k(0), at, n), to_host(c_.dtype, v(0), at, n),
            to_host(c_.dtype, o_dev, at, n),
            to_host(DType::fp32, l_dev, static_cast<std::size_t>(slice * s), static_cast<std::size_t>(s))};
  }

  // The slice's O and L at the sampled rows against the host's forward of those rows: appended to
  // got_o and ref_o, then to got_l and ref_l.
  void check_rows(const HostSlice& h, const std::vector<long>& picked, std::vector<double>& got_o,
                  std::vector<double>& ref_o, std::vector<double>& got_l, std::vector<double>& ref_l) const {
    const long d = c_.dims.head_dim;
    std::vector<double> o_ref(picked.size() * static_cast<std::size_t>(d)), l_ref(picked.size());
    attention_forward_rows(problem(), h.q.data(), h.k.data(), h.v.data(), picked, o_ref.data(), l_ref.data());
    append(got_o, pick_rows(h.o, picked, d));
    append(ref_o, o_ref);
    append(got_l, pick_rows(h.l, picked, 1));
    append(ref_l, l_ref);
  }

  Verification check_forward(cudaStream_t stream) {
    Verification result;
    result.tolerance = dtype_tolerance(c_.dtype);
    const std::size_t rows = static_cast<std::size_t>(c_.dims.rows());
    const unsigned long long bad =
        count_bad(c_.dtype, out_.get(), elems_, stream) + count_bad(DType::fp32, lse_.get(), rows, stream);
    if (bad) {
      result.detail = fmt::format("{} of {} outputs (O and L) are NaN or Inf", bad, elems_ + rows);
      return result;
    }
    std::mt19937_64 rng(fresh_seed());
    std::vector<double> got_o, ref_o, got_l, ref_l;
    for (long slice : sample_slices()) {
      const HostSlice h = host_slice(slice, out_.get(), lse_.get());
      check_rows(h, sample_rows(c_.dims.seq, rng), got_o, ref_o, got_l, ref_l);
    }
    ErrorReport report;
    report.add("O", ErrorSum(got_o, ref_o), result.tolerance);
    report.add("L", ErrorSum(got_l, ref_l), result.tolerance);
    return verification_of(report,
                           fmt::format("{} rows of {} (batch, head) slices", got_l.size(), sample_slices().size()));
  }

  Verification check_backward(cudaStream_t stream) {
    Verification result;
    result.tolerance = dtype_tolerance(c_.dtype);
    const unsigned long long bad = count_bad(c_.dtype, dq(), elems_, stream) +
                                   count_bad(c_.dtype, dk(), elems_, stream) +
                                   count_bad(c_.dtype, dv(), elems_, stream);
    if (bad) {
      result.detail = fmt::format("{} of the gradient elements (dQ, dK, dV) are NaN or Inf", bad);
      return result;
    }
    const long s = c_.dims.seq, d = c_.dims.head_dim;
    const std::size_t slice_elems = static_cast<std::size_t>(s * d);
    std::mt19937_64 rng(fresh_seed());
    std::vector<double> got[3], ref[3], got_fwd, ref_fwd;
    for (long slice : sample_slices()) {
      const std::size_t at = static_cast<std::size_t>(slice) * slice_elems;
      HostSlice h = host_slice(slice, o(0), lse(0));
      const auto hdo = to_host(c_.dtype, d_o(0), at, slice_elems);
      const std::vector<long> picked = sample_rows(s, rng);
      if (s <= kFullReferenceSeq) {
        // Whole slice: the host's own forward feeds the reference backward.
        std::vector<double> o_ref(slice_elems), l_ref(static_cast<std::size_t>(s));
        attention_forward_reference(problem(), h.q.data(), h.k.data(), h.v.data(), o_ref.data(), l_ref.data());
        append(got_fwd, h.o);
        append(ref_fwd, o_ref);
        h.o = o_ref;
        h.l = l_ref;
      } else {
        // Long sequences: the device's O and L (checked here on sampled rows) feed the backward
        // reference of sampled rows, which would otherwise need all s rows of the forward.
        check_rows(h, picked, got_fwd, ref_fwd, got_fwd, ref_fwd);
      }
      const std::size_t n = picked.size() * static_cast<std::size_t>(d);
      std::vector<double> dq_ref(n), dk_ref(n), dv_ref(n);
      attention_backward_rows(problem(), h.q.data(), h.k.data(), h.v.data(), h.o.data(), h.l.data(), hdo.data(), picked,
                              dq_ref.data(), picked, dk_ref.data(), dv_ref.data());
      const void* grads[3] = {dq(), dk(), dv()};
      for (int g = 0; g < 3; ++g) {
        append(got[g], pick_rows(to_host(c_.dtype, grads[g], at, slice_elems), picked, d));
      }
      append(ref[0], dq_ref);
      append(ref[1], dk_ref);
      append(ref[2], dv_ref);
    }
    ErrorReport report;
    report.add("dQ", ErrorSum(got[0], ref[0]), result.tolerance);
    report.add("dK", ErrorSum(got[1], ref[1]), result.tolerance);
    report.add("dV", ErrorSum(got[2], ref[2]), result.tolerance);
    report.add("forward", ErrorSum(got_fwd, ref_fwd), result.tolerance);
    return verification_of(report, fmt::format("{} rows of {} slices", got[0].size() / static_cast<std::size_t>(d),
                                               sample_slices().size()));
  }

  AttentionCase c_;
  std::size_t elems_ = 0, tensor_ = 0, stats_ = 0;
  // Q, K, V (and dO, O, L) of each set together in one allocation, the sets one after another.
  RotatedInputs inputs_{RotatedInputs::Layout::by_set};
  RotatedInputs::Id q_, k_, v_, do_, o_, l_;
  DeviceBuffer out_, lse_, grads_, scores_, probs_, row_dot_, unfused_lse_, workspace_;
  std::unique_ptr<cudnn::SdpaForward> sdpa_;       // cudnn only: the finalized execution plans
  std::unique_ptr<cudnn::SdpaBackward> sdpa_bwd_;  // cudnn backward only
};

}  // namespace

std::string attention_impl_name(AttentionImpl impl) {
  switch (impl) {
    case AttentionImpl::unfused: return "unfused";
    case AttentionImpl::fused: return "fused";
    case AttentionImpl::cudnn: return "cudnn";
  }
  return "?";
}

std::string attention_unsupported_reason(const AttentionCase& c) {
  const auto& d = c.dims;
  if (c.dtype != DType::bf16 && c.dtype != DType::fp16) {
    return fmt::format("attention supports bf16 and fp16, not {}", dtype_name(c.dtype));
  }
  if (d.batch < 1 || d.heads < 1 || d.seq < 1 || d.head_dim < 1) return "attention needs b, h, s and d >= 1";
  if (c.impl == AttentionImpl::fused) return kernels::flash_attention_unsupported_reason(c.dtype, d);
  if (c.impl == AttentionImpl::cudnn) return cudnn::sdpa_unsupported_reason(c.dtype, d);
  if (d.head_dim % 8 != 0) return fmt::format("unfused attention needs d a multiple of 8 (d = {})", d.head_dim);
  if (d.slices() > 0x7fffffffL || d.rows() > 0x7fffffffL) return "unfused attention: b*h*s too large";
  return "";
}

double attention_matmul_flops(const AttentionCase& c) {
  const auto& d = c.dims;
  const double b = static_cast<double>(d.batch), h = static_cast<double>(d.heads), s = static_cast<double>(d.seq),
               hd = static_cast<double>(d.head_dim);
  if (c.impl == AttentionImpl::unfused) {
    return c.pass == AttentionPass::forward ? flops::attention_unfused_forward_matmul(b, h, s, hd)
                                            : flops::attention_unfused_backward_matmul(b, h, s, hd);
  }
  if (c.impl == AttentionImpl::cudnn) {
    // cuDNN's tiling is not public: count what an exact causal skip computes (the public
    // convention's figure), a lower bound on what its engine multiplies.
    return c.pass == AttentionPass::forward ? flops::attention_forward(b, h, s, hd, d.causal)
                                            : flops::attention_backward(b, h, s, hd, d.causal);
  }
  return c.pass == AttentionPass::forward
             ? flops::attention_fused_forward_matmul(b, h, s, hd, d.causal, kernels::kFlashForwardBlockQ,
                                                     kernels::kFlashForwardBlockK)
             : flops::attention_fused_backward_matmul(b, h, s, hd, d.causal, kernels::kFlashBackwardBlockQ,
                                                      kernels::kFlashBackwardBlockK);
}

double attention_memory_bytes(const AttentionCase& c) {
  const AttentionWorkload w(c);
  return w.device_bytes(1);
}

std::unique_ptr<Workload> make_attention_workload(const AttentionCase& c) {
  return std::make_unique<AttentionWorkload>(c);
}

}  // namespace wflops
