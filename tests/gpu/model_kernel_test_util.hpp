// Shared by the GPU tests of the model step's kernels (LayerNorm, RMSNorm, cross-entropy, embedding,
// SwiGLU, multi-tensor AdamW): random device buffers, NaN-poisoned outputs with guard elements past
// their end, downloads decoded to double for the fp64 host references, the fixture of a
// parameterised kernel test, and the checks the normalisations share.
#pragma once
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "common/fill_random.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/harness.hpp"
#include "dtype.hpp"
#include "elementwise/cast.cuh"
#include "gpu_test_util.hpp"
#include "numeric_formats.hpp"
#include "reference/verify_error.hpp"

namespace wflops::testing {

constexpr std::size_t kGuard = 16;  // poisoned elements past every output: must stay NaN

inline void* offset_elements(const DeviceBuffer& b, DType t, std::size_t elements) {
  return b.as<char>() + elements * dtype_bytes(t);
}

inline std::vector<double> download(DType t, const void* data, std::size_t n) {
  std::vector<unsigned char> raw(n * dtype_bytes(t));
  if (n) CUDA_CHECK(cudaMemcpy(raw.data(), data, raw.size(), cudaMemcpyDeviceToHost));
  std::vector<double> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = decode_element(t, raw.data(), i);
  return out;
}

inline std::vector<unsigned char> download_bytes(const void* data, std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (bytes) CUDA_CHECK(cudaMemcpy(raw.data(), data, bytes, cudaMemcpyDeviceToHost));
  return raw;
}

// The first `bytes` of a and b hold the same bits: a result run to run, or written in place and
// out of place.
inline void expect_same_bits(const DeviceBuffer& a, const DeviceBuffer& b, std::size_t bytes) {
  EXPECT_EQ(download_bytes(a.get(), bytes), download_bytes(b.get(), bytes));
}

// n random elements in [-1, 1) (plus `extra` elements before them for deliberately misaligned
// views, also random).
inline DeviceBuffer random_buffer(DType t, std::size_t n, std::size_t extra = 0) {
  DeviceBuffer b((n + extra) * dtype_bytes(t));
  CUDA_CHECK(kernels::fill_random(t, b.get(), n + extra, fresh_seed(), nullptr));
  return b;
}

// Host values stored on the device in t (rounded to nearest even), so a test can choose its inputs'
// range; the reference then decodes what was stored.
inline DeviceBuffer upload(DType t, const std::vector<double>& values) {
  const std::size_t n = values.size();
  std::vector<unsigned char> raw(n * dtype_bytes(t));
  for (std::size_t i = 0; i < n; ++i) {
    const float f = static_cast<float>(values[i]);
    if (t == DType::fp32) {
      std::memcpy(raw.data() + 4 * i, &f, 4);
    } else {
      const std::uint16_t bits =
          t == DType::bf16 ? kernels::float_to_bf16_bits_host(f) : kernels::float_to_fp16_bits_host(f);
      std::memcpy(raw.data() + 2 * i, &bits, 2);
    }
  }
  DeviceBuffer b(raw.size());
  if (n) CUDA_CHECK(cudaMemcpy(b.get(), raw.data(), raw.size(), cudaMemcpyHostToDevice));
  return b;
}

template <typename I>
DeviceBuffer upload_ints(const std::vector<I>& values) {
  DeviceBuffer b(values.size() * sizeof(I));
  if (!values.empty()) CUDA_CHECK(cudaMemcpy(b.get(), values.data(), b.bytes(), cudaMemcpyHostToDevice));
  return b;
}

// n elements plus the guard, all NaN (0xFF bytes are NaN in fp32, fp16 and bf16).
inline DeviceBuffer poisoned(DType t, std::size_t n, std::size_t extra = 0) {
  DeviceBuffer b((n + extra + kGuard) * dtype_bytes(t));
  CUDA_CHECK(cudaMemset(b.get(), 0xFF, b.bytes()));
  return b;
}

// Every one of the n elements at data was written (finite), and the guard after them was not.
inline void expect_written_exactly(DType t, const void* data, std::size_t n, const char* what) {
  const std::vector<double> all = download(t, data, n + kGuard);
  std::size_t nonfinite = 0;
  for (std::size_t i = 0; i < n; ++i) nonfinite += std::isfinite(all[i]) ? 0 : 1;
  EXPECT_EQ(nonfinite, 0u) << what << ": elements left unwritten or not finite";
  for (std::size_t i = n; i < n + kGuard; ++i) {
    EXPECT_TRUE(std::isnan(all[i])) << what << " wrote past its end at " << i;
  }
}

// An output and what it must hold: n elements of t, all written, none past them.
struct Written {
  DType t;
  const DeviceBuffer& buffer;
  std::size_t n;
  const char* what;
};
inline void expect_written_exactly(std::initializer_list<Written> outputs) {
  for (const Written& o : outputs) expect_written_exactly(o.t, o.buffer.get(), o.n, o.what);
}

// The relative-error bound for a model kernel's outputs in t: 1e-5 in fp32 (its accumulation
// order alone), the dtype's own tolerance otherwise.
inline double kernel_tolerance(DType t) { return t == DType::fp32 ? 1e-5 : dtype_tolerance(t); }

// The fixture of a parameterised model-kernel test over cases with a `dtype`: it skips the test
// without a GPU (WFLOPS_REQUIRE_GPU, before the body runs) and holds the case p, its dtype t and
// the tolerance tol for that dtype.
template <class Case>
class KernelCaseTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override { WFLOPS_REQUIRE_GPU(); }

  const Case p = this->GetParam();  // gtest hands the parameter to the constructor too
  const DType t = p.dtype;
  const double tol = kernel_tolerance(t);
};

// The eps of the normalisation tests: GPT-2's LayerNorm and Llama's RMSNorm both use 1e-5.
constexpr float kNormEps = 1e-5f;

// A row-wise normalisation case (LayerNorm, RMSNorm): rows of width d, and offset elements before
// the input's first (1 makes every row misaligned: the element path).
struct NormCase {
  DType dtype;
  std::size_t d, rows, offset;
};

// The fixture of a fused residual + normalisation test (LayerNorm, RMSNorm): rows of width d, n
// elements; the inputs a (p.offset elements into a_buf), b, gamma, dy and d_residual random; the
// outputs s, y, ds and dgamma (fp32) poisoned. Allocated in SetUp, once the GPU check passed.
class ResidualNormTest : public KernelCaseTest<NormCase> {
 protected:
  void SetUp() override {
    KernelCaseTest::SetUp();
    if (IsSkipped()) return;
    a_buf = random_buffer(t, n, p.offset);
    a = offset_elements(a_buf, t, p.offset);
    b = random_buffer(t, n), gamma = random_buffer(t, d), dy = random_buffer(t, n), dres = random_buffer(t, n);
    s = poisoned(t, n), y = poisoned(t, n), ds = poisoned(t, n), dgamma = poisoned(DType::fp32, d);
  }

  const std::size_t d = p.d, rows = p.rows, n = rows * d;
  DeviceBuffer a_buf, b, gamma, dy, dres;
  const void* a = nullptr;
  DeviceBuffer s, y, ds, dgamma;
};

inline std::string norm_case_name(const ::testing::TestParamInfo<NormCase>& info) {
  return std::string(dtype_name(info.param.dtype)) + "_d" + std::to_string(info.param.d) + "_rows" +
         std::to_string(info.param.rows) + (info.param.offset ? "_misaligned" : "");
}

// The fused residual add of a normalisation: s, as stored (n elements of t), against a + b of
// the stored inputs.
inline void expect_residual_sum(DType t, const void* a, const void* b, const std::vector<double>& s, double tol) {
  const std::vector<double> ha = download(t, a, s.size()), hb = download(t, b, s.size());
  std::vector<double> sum(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) sum[i] = ha[i] + hb[i];
  EXPECT_LT(relative_error(s, sum), tol) << "s";
}

// A normalisation's input gradient ds against its reference, whole and then the normalisation's
// part alone: the residual gradient d_residual added onto it is most of ds's norm and could hide
// an error there.
inline void expect_input_gradient(const std::vector<double>& ds, const std::vector<double>& ds_ref,
                                  const std::vector<double>& d_residual, double tol) {
  EXPECT_LT(relative_error(ds, ds_ref), tol) << "ds";
  std::vector<double> got = ds, ref = ds_ref;
  for (std::size_t i = 0; i < got.size(); ++i) {
    got[i] -= d_residual[i];
    ref[i] -= d_residual[i];
  }
  EXPECT_LT(relative_error(got, ref), tol) << "ds - d_residual";
}

inline std::vector<double> scaled(const std::vector<double>& v, double k) {
  std::vector<double> out(v);
  for (double& x : out) x *= k;
  return out;
}

}  // namespace wflops::testing
