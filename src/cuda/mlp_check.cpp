#include "cuda/mlp_check.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>

#include "common/count_nonfinite.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/verify_report.hpp"
#include "numeric_formats.hpp"
#include "reference/mlp_reference.hpp"
#include "reference/verify_error.hpp"

namespace wflops {

namespace {

struct DeviceArray {
  const char* name;
  DType dtype;
  const void* data;
  std::size_t count;
};

// Empty when every element of every array is finite, else which array has how many NaN/Inf.
std::string nonfinite_report(const std::vector<DeviceArray>& arrays, cudaStream_t stream) {
  DeviceBuffer counts(arrays.size() * sizeof(unsigned long long));
  CUDA_CHECK(cudaMemsetAsync(counts.get(), 0, counts.bytes(), stream));
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    CUDA_CHECK(kernels::count_nonfinite(arrays[i].dtype, arrays[i].data, arrays[i].count,
                                        counts.as<unsigned long long>() + i, stream));
  }
  std::vector<unsigned long long> host(arrays.size());
  CUDA_CHECK(cudaMemcpyAsync(host.data(), counts.get(), counts.bytes(), cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  std::string report;
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    if (host[i])
      report += fmt::format("{}{}: {} of {} NaN or Inf", report.empty() ? "" : "; ", arrays[i].name, host[i],
                            arrays[i].count);
  }
  return report;
}

// Elements [first, first + count) of a device array, decoded (float holds every fp16/bf16 value).
std::vector<float> to_host(DType t, const void* data, std::size_t first, std::size_t count) {
  const std::size_t e = dtype_bytes(t);
  std::vector<unsigned char> raw(count * e);
  CUDA_CHECK(cudaMemcpy(raw.data(), static_cast<const char*>(data) + first * e, raw.size(), cudaMemcpyDeviceToHost));
  std::vector<float> out(count);
  for (std::size_t i = 0; i < count; ++i) out[i] = static_cast<float>(decode_element(t, raw.data(), i));
  return out;
}

double element(DType t, const void* data, std::size_t i) { return to_host(t, data, i, 1)[0]; }

// The first, the last and up to `count` random indices of [0, extent).
std::vector<long> sample(long extent, int count, std::mt19937_64& rng) {
  std::set<long> picked = {0, extent - 1};
  std::uniform_int_distribution<long> pick(0, extent - 1);
  while (static_cast<long>(picked.size()) < std::min<long>(extent, count + 2)) picked.insert(pick(rng));
  return {picked.begin(), picked.end()};
}

mlp_ref::Act reference_activation(kernels::Activation a) {
  switch (a) {
    case kernels::Activation::relu: return mlp_ref::Act::relu;
    case kernels::Activation::gelu: return mlp_ref::Act::gelu;
    case kernels::Activation::none: return mlp_ref::Act::none;
  }
  return mlp_ref::Act::none;
}

// The sizes of one step's arrays. Gated (SwiGLU): W1 and dW1 are [2 d_ff, d], dh = [dg | du] is
// [T, 2 d_ff].
struct StepSizes {
  explicit StepSizes(const MlpConfig& c)
      : w1_rows(c.variant.gated ? 2 * c.d_ff : c.d_ff),
        td(static_cast<std::size_t>(c.tokens) * c.d),
        th(static_cast<std::size_t>(c.tokens) * w1_rows),
        w(static_cast<std::size_t>(c.d) * c.d_ff),
        w1_size(static_cast<std::size_t>(w1_rows) * c.d),
        dh_name(c.variant.gated ? "dgu" : "dh") {}
  long w1_rows;
  std::size_t td, th, w, w1_size;  // elements of x (and y, dx, dy), of dh, of W2, of W1
  const char* dh_name;
};

// Everything the step writes is finite (it was poisoned with NaN before the step): "" or which
// arrays are not.
std::string nonfinite_outputs(const MlpDeviceView& v, const StepSizes& z, cudaStream_t stream) {
  const MlpConfig& c = v.config;
  std::vector<DeviceArray> outputs = {{"y", c.dtype, v.y, z.td}};
  if (!c.forward_only) {
    outputs.push_back({z.dh_name, c.dtype, v.dh, z.th});
    outputs.push_back({"dx", c.dtype, v.dx, z.td});
    outputs.push_back({"dW1", v.grad_dtype, v.dw1, z.w1_size});
    outputs.push_back({"dW2", v.grad_dtype, v.dw2, z.w});
    if (c.variant.bias) {
      outputs.push_back({"db1", v.grad_dtype, v.db1, static_cast<std::size_t>(c.d_ff)});
      outputs.push_back({"db2", v.grad_dtype, v.db2, static_cast<std::size_t>(c.d)});
    }
  }
  return nonfinite_report(outputs, stream);
}

// The reference's inputs: exactly the values stored on the device.
mlp_ref::MlpHost reference_inputs(const MlpDeviceView& v, const StepSizes& z) {
  const MlpConfig& c = v.config;
  mlp_ref::MlpHost m;
  m.d = c.d;
  m.d_ff = c.d_ff;
  m.tokens = c.tokens;
  m.act = reference_activation(c.variant.act);
  m.residual = c.variant.residual;
  m.gated = c.variant.gated;
  m.x = to_host(c.dtype, v.x, 0, z.td);
  // A forward-only step has no dy (null): zeros keep the reference's row computations in bounds.
  m.dy = v.dy ? to_host(c.dtype, v.dy, 0, z.td) : std::vector<float>(z.td, 0.0f);
  m.w1 = to_host(c.dtype, v.w1, 0, z.w1_size);
  m.w2 = to_host(c.dtype, v.w2, 0, z.w);
  if (c.variant.bias) {
    m.b1 = to_host(c.dtype, v.b1, 0, c.d_ff);
    m.b2 = to_host(c.dtype, v.b2, 0, c.d);
  }
  return m;
}

// y on the sampled token rows and, with a backward, dh and dx on the same rows.
void compare_token_rows(const MlpDeviceView& v, const StepSizes& z, const mlp_ref::MlpHost& m,
                        const std::vector<long>& rows, double tol, ErrorReport& report) {
  const MlpConfig& c = v.config;
  std::vector<double> y_got, y_ref, dh_got, dh_ref, dx_got, dx_ref;
  for (long t : rows) {
    const mlp_ref::TokenRow r = mlp_ref::token_row(m, t);
    const std::vector<float> y = to_host(c.dtype, v.y, static_cast<std::size_t>(t) * c.d, c.d);
    y_got.insert(y_got.end(), y.begin(), y.end());
    y_ref.insert(y_ref.end(), r.y.begin(), r.y.end());
    if (c.forward_only) continue;
    const std::vector<float> dh = to_host(c.dtype, v.dh, static_cast<std::size_t>(t) * z.w1_rows, z.w1_rows);
    const std::vector<float> dx = to_host(c.dtype, v.dx, static_cast<std::size_t>(t) * c.d, c.d);
    dh_got.insert(dh_got.end(), dh.begin(), dh.end());
    dh_ref.insert(dh_ref.end(), r.dh.begin(), r.dh.end());
    dx_got.insert(dx_got.end(), dx.begin(), dx.end());
    dx_ref.insert(dx_ref.end(), r.dx.begin(), r.dx.end());
  }
  report.add("y", ErrorSum(y_got, y_ref), tol);
  if (c.forward_only) return;
  report.add(z.dh_name, ErrorSum(dh_got, dh_ref), tol);
  report.add("dx", ErrorSum(dx_got, dx_ref), tol);
}

// dW2 [d, d_ff]: sampled columns j (one hidden column each) x sampled rows. Says how many.
std::string compare_dw2(const MlpDeviceView& v, const mlp_ref::MlpHost& m, std::mt19937_64& rng, double tol,
                        ErrorReport& report) {
  const MlpConfig& c = v.config;
  const std::vector<long> w2_cols = sample(c.d_ff, 4, rng), w2_rows = sample(c.d, 6, rng);
  std::vector<double> dw2_got, dw2_ref;
  for (long j : w2_cols) {
    const std::vector<double> ref = mlp_ref::dw2_column(m, j, w2_rows);
    dw2_ref.insert(dw2_ref.end(), ref.begin(), ref.end());
    for (long i : w2_rows) dw2_got.push_back(element(v.grad_dtype, v.dw2, static_cast<std::size_t>(i) * c.d_ff + j));
  }
  report.add("dW2", ErrorSum(dw2_got, dw2_ref), tol);
  return fmt::format("{} x {} entries of dW2", w2_rows.size(), w2_cols.size());
}

// dW1 [d_ff, d]: sampled rows i (one dh column each) x sampled columns; with a bias, db1 at the same
// i into `db1_sampled`. Gated ([2 d_ff, d]): sampled gate rows and, separately, sampled up rows, so
// both halves are checked. Says how many.
std::string compare_dw1(const MlpDeviceView& v, const mlp_ref::MlpHost& m, std::mt19937_64& rng, double tol,
                        ErrorReport& report, ErrorSum& db1_sampled) {
  const MlpConfig& c = v.config;
  std::vector<long> dw1_rows = sample(c.d_ff, 4, rng);
  if (c.variant.gated) {
    for (long i : sample(c.d_ff, 4, rng)) dw1_rows.push_back(c.d_ff + i);
  }
  const std::vector<long> w1_cols = sample(c.d, 6, rng);
  std::vector<double> dw1_got, dw1_ref;
  for (long i : dw1_rows) {
    double db1_i = 0;
    const std::vector<double> ref = mlp_ref::dw1_row(m, i, w1_cols, &db1_i);
    dw1_ref.insert(dw1_ref.end(), ref.begin(), ref.end());
    for (long k : w1_cols) dw1_got.push_back(element(v.grad_dtype, v.dw1, static_cast<std::size_t>(i) * c.d + k));
    if (c.variant.bias) db1_sampled.add(element(v.grad_dtype, v.db1, static_cast<std::size_t>(i)), db1_i);
  }
  report.add("dW1", ErrorSum(dw1_got, dw1_ref), tol);
  return fmt::format("{} x {} of dW1", dw1_rows.size(), w1_cols.size());
}

// db2: every entry against the reference (a sum of dy over tokens). db1: the sampled entries
// against the full reference, and every entry against the sum of the dh the GPU stored (the
// reduction checked everywhere; dh itself is checked on the sampled rows).
void compare_bias_grads(const MlpDeviceView& v, const mlp_ref::MlpHost& m, const ErrorSum& db1_sampled, double tol,
                        ErrorReport& report) {
  const MlpConfig& c = v.config;
  const std::vector<float> db2 = to_host(v.grad_dtype, v.db2, 0, c.d);
  report.add("db2", ErrorSum({db2.begin(), db2.end()}, mlp_ref::db2(m)), tol);
  report.add("db1", db1_sampled, tol);
  std::vector<double> db1_of_dh(c.d_ff, 0.0);
  const long chunk = std::max(1L, (64L << 20) / (c.d_ff * 4));  // ~64 MiB of dh per copy
  for (long t0 = 0; t0 < c.tokens; t0 += chunk) {
    const long n = std::min(chunk, c.tokens - t0);
    const std::vector<float> dh =
        to_host(c.dtype, v.dh, static_cast<std::size_t>(t0) * c.d_ff, static_cast<std::size_t>(n) * c.d_ff);
    for (long t = 0; t < n; ++t) {
      for (long i = 0; i < c.d_ff; ++i) db1_of_dh[i] += dh[static_cast<std::size_t>(t) * c.d_ff + i];
    }
  }
  const std::vector<float> db1 = to_host(v.grad_dtype, v.db1, 0, c.d_ff);
  report.add("db1=sum(dh)", ErrorSum({db1.begin(), db1.end()}, db1_of_dh), tol);
}

}  // namespace

Verification check_mlp_step(const MlpDeviceView& v, cudaStream_t stream) {
  const MlpConfig& c = v.config;
  const StepSizes z(c);
  const double tol = dtype_tolerance(c.dtype);
  const std::string bad = nonfinite_outputs(v, z, stream);
  if (!bad.empty()) {
    Verification fail;
    fail.tolerance = tol;
    fail.rel_err = INFINITY;
    fail.detail = "unwritten or overflowed outputs: " + bad;
    return fail;
  }
  const mlp_ref::MlpHost m = reference_inputs(v, z);
  std::mt19937_64 rng(fresh_seed());
  const std::vector<long> rows = sample(c.tokens, 6, rng);
  ErrorReport report;
  compare_token_rows(v, z, m, rows, tol, report);
  std::string what = fmt::format("{} token rows", rows.size());
  if (c.forward_only) return verification_of(report, what + " of y, all outputs finite");
  const std::string dw2 = compare_dw2(v, m, rng, tol, report);
  ErrorSum db1_sampled;
  const std::string dw1 = compare_dw1(v, m, rng, tol, report, db1_sampled);
  what += ", " + dw2 + ", " + dw1;
  if (c.variant.bias) {
    compare_bias_grads(v, m, db1_sampled, tol, report);
    what += ", every db1 and db2 entry";
  }
  return verification_of(report, what + ", all outputs and gradients finite");
}

MasterSample sample_masters(const float* master, const std::vector<std::pair<std::size_t, std::size_t>>& regions,
                            int per_region) {
  MasterSample s;
  std::mt19937_64 rng(fresh_seed());
  for (const auto& [first, count] : regions) {
    if (count == 0) continue;
    for (long i : sample(static_cast<long>(count), per_region, rng)) s.index.push_back(first + i);
  }
  for (std::size_t i : s.index) s.before.push_back(element(DType::fp32, master, i));
  return s;
}

Verification check_master_update(const MasterSample& s, const kernels::AdamW& opt, DType half_dtype, const void* half,
                                 const float* master, const float* m, const float* v, const float* grad) {
  // The cast rounds to nearest: at most half a unit in the last place (bf16 2^-9, fp16 2^-12
  // relative to the value's binade; checked as 2^-8 and 2^-11 of |master|).
  const double cast_bound = half_dtype == DType::bf16 ? 1.0 / 256 : 1.0 / 2048;
  std::size_t cast_bad = 0;
  std::vector<double> p_got, p_ref, m_got, m_ref, v_got, v_ref, step_got, step_ref;
  for (std::size_t k = 0; k < s.index.size(); ++k) {
    const std::size_t i = s.index[k];
    const double h = element(half_dtype, half, i);
    // (+ 2^-24: fp16's subnormals below 2^-14 are rounded to an absolute 2^-25.)
    if (!(std::fabs(h - s.before[k]) <= cast_bound * std::fabs(s.before[k]) + 0x1p-24)) ++cast_bad;
    double p = s.before[k], mm = 0, vv = 0;
    kernels::adamw_step_host(opt, 1, p, element(DType::fp32, grad, i), mm, vv);
    p_ref.push_back(p);
    m_ref.push_back(mm);
    v_ref.push_back(vv);
    step_ref.push_back(p - s.before[k]);
    p_got.push_back(element(DType::fp32, master, i));
    m_got.push_back(element(DType::fp32, m, i));
    v_got.push_back(element(DType::fp32, v, i));
    step_got.push_back(p_got.back() - s.before[k]);
  }
  if (cast_bad) {
    Verification fail;
    fail.rel_err = INFINITY;
    fail.tolerance = cast_bound;
    fail.detail = fmt::format("{} of {} sampled {} weights are not their fp32 masters rounded", cast_bad,
                              s.index.size(), dtype_name(half_dtype));
    return fail;
  }
  // The updated weights against AdamW in double (fp32 state: 1e-4); the update itself (a 1e-4
  // relative change, so fp32 rounding of the weight is ~1e-3 of it) within 1e-2, which a missing
  // or wrong update fails.
  ErrorReport report;
  report.add("master", ErrorSum(p_got, p_ref), 1e-4);
  report.add("adam_m", ErrorSum(m_got, m_ref), 1e-4);
  report.add("adam_v", ErrorSum(v_got, v_ref), 1e-4);
  report.add("update", ErrorSum(step_got, step_ref), 1e-2);
  return verification_of(report,
                         fmt::format("{} sampled master weights, their casts and AdamW moments", s.index.size()));
}

}  // namespace wflops
