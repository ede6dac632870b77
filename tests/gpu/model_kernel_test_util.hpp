// Shared by the GPU tests of the model step's kernels (LayerNorm, cross-entropy, embedding,
// multi-tensor AdamW): random device buffers, NaN-poisoned outputs with guard elements past their
// end, and downloads decoded to double for the fp64 host references.
#pragma once
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/fill_random.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/harness.hpp"
#include "dtype.hpp"
#include "elementwise/cast.cuh"
#include "numeric_formats.hpp"

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

// The relative-error bound for a model kernel's outputs in t: 1e-5 in fp32 (its accumulation
// order alone), the dtype's own tolerance otherwise.
inline double kernel_tolerance(DType t) { return t == DType::fp32 ? 1e-5 : dtype_tolerance(t); }

// A row-wise normalisation case (LayerNorm, RMSNorm): rows of width d, and offset elements before
// the input's first (1 makes every row misaligned: the element path).
struct NormCase {
  DType dtype;
  std::size_t d, rows, offset;
};

inline std::string norm_case_name(const ::testing::TestParamInfo<NormCase>& info) {
  return std::string(dtype_name(info.param.dtype)) + "_d" + std::to_string(info.param.d) + "_rows" +
         std::to_string(info.param.rows) + (info.param.offset ? "_misaligned" : "");
}

inline std::vector<double> scaled(const std::vector<double>& v, double k) {
  std::vector<double> out(v);
  for (double& x : out) x *= k;
  return out;
}

}  // namespace wflops::testing
