// Our wmma matmul against the fp64 CPU reference, on every element, for bf16 and fp16, on exact
// tiles, ragged edges (odd M and N, K not a multiple of the 32-wide k-tile) and a large shape.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "cuda/device_buffer.hpp"
#include "dtype.hpp"
#include "gpu_test_util.hpp"
#include "matmul/matmul_wmma.cuh"
#include "reference/verify_error.hpp"

namespace {

using wflops::DeviceBuffer;
using wflops::DType;
using wflops::ErrorSum;

// Fails the current test (and returns from the calling void function) when a CUDA call fails.
#define ASSERT_CUDA_OK(call)                                                                                    \
  do {                                                                                                          \
    const cudaError_t err_ = (call);                                                                            \
    ASSERT_EQ(err_, cudaSuccess) << #call << ": " << cudaGetErrorName(err_) << " (" << cudaGetErrorString(err_) \
                                 << ")";                                                                        \
  } while (0)

// Host conversions of cuda_bf16.h / cuda_fp16.h (round to nearest even), and back.
template <typename T>
struct Host;
template <>
struct Host<__nv_bfloat16> {
  static constexpr DType dtype = DType::bf16;
  static __nv_bfloat16 from_float(float x) { return __float2bfloat16(x); }
  static double to_double(__nv_bfloat16 x) { return static_cast<double>(__bfloat162float(x)); }
};
template <>
struct Host<__half> {
  static constexpr DType dtype = DType::fp16;
  static __half from_float(float x) { return __float2half(x); }
  static double to_double(__half x) { return static_cast<double>(__half2float(x)); }
};

template <typename T>
std::uint16_t bits_of(T x) {
  static_assert(sizeof(T) == 2, "16-bit types only");
  std::uint16_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

// Runs C = A * B^T (TN, see matmul_wmma.cuh) on random inputs and compares every element with the
// fp64 reference computed on the exact stored 16-bit values. `c_offset` shifts C by that many
// elements from a 16-byte boundary (1 forces the element-store path of the epilogue).
template <typename T>
void check_matmul(long M, long N, long K, long c_offset = 0) {
  const DType dtype = Host<T>::dtype;
  ASSERT_EQ(wflops::kernels::matmul_wmma_unsupported_reason(dtype, M, N, K), "");
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << wflops::dtype_name(dtype) << " M=" << M << " N=" << N << " K=" << K
                                    << " c_offset=" << c_offset << " seed=" << seed);

  // Inputs in [-1, 1), rounded to T on the host; the reference sees the rounded values.
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<T> a(static_cast<std::size_t>(M * K)), b(static_cast<std::size_t>(N * K));
  std::vector<double> a_ref(a.size()), b_ref(b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    a[i] = Host<T>::from_float(uniform(rng));
    a_ref[i] = Host<T>::to_double(a[i]);
  }
  for (std::size_t i = 0; i < b.size(); ++i) {
    b[i] = Host<T>::from_float(uniform(rng));
    b_ref[i] = Host<T>::to_double(b[i]);
  }

  // C sits between two guard zones that must stay untouched; all of it starts as 0xFFFF, a NaN in
  // both bf16 and fp16, so an element the kernel forgets to write cannot pass.
  constexpr long kGuard = 64;  // elements: 128 bytes, so C stays 16-byte aligned when c_offset = 0
  const long c_elems = M * N;
  const long total = kGuard + c_offset + c_elems + kGuard;
  const DeviceBuffer d_a(a.size() * sizeof(T)), d_b(b.size() * sizeof(T)),
      d_c(static_cast<std::size_t>(total) * sizeof(T));
  ASSERT_CUDA_OK(cudaMemcpy(d_a.get(), a.data(), a.size() * sizeof(T), cudaMemcpyHostToDevice));
  ASSERT_CUDA_OK(cudaMemcpy(d_b.get(), b.data(), b.size() * sizeof(T), cudaMemcpyHostToDevice));
  ASSERT_CUDA_OK(cudaMemset(d_c.get(), 0xFF, static_cast<std::size_t>(total) * sizeof(T)));
  T* c_dev = static_cast<T*>(d_c.get()) + kGuard + c_offset;

  const wflops::testing::TestStream stream;
  ASSERT_CUDA_OK(wflops::kernels::matmul_wmma(dtype, d_a.get(), d_b.get(), c_dev, M, N, K, stream.get()));
  ASSERT_CUDA_OK(cudaStreamSynchronize(stream.get()));
  ASSERT_CUDA_OK(cudaGetLastError());

  std::vector<T> c_all(static_cast<std::size_t>(total));
  ASSERT_CUDA_OK(cudaMemcpy(c_all.data(), d_c.get(), c_all.size() * sizeof(T), cudaMemcpyDeviceToHost));

  std::vector<double> c_ref(static_cast<std::size_t>(c_elems));
  wflops::kernels::matmul_tn_reference(a_ref.data(), b_ref.data(), c_ref.data(), M, N, K);

  // Nothing written outside C.
  long guard_writes = 0;
  for (long i = 0; i < total; ++i) {
    const bool inside = i >= kGuard + c_offset && i < kGuard + c_offset + c_elems;
    if (!inside && bits_of(c_all[static_cast<std::size_t>(i)]) != 0xFFFF) ++guard_writes;
  }
  EXPECT_EQ(guard_writes, 0) << "elements written outside C";

  // Every element of C written and finite; relative error in the 2-norm over all elements, and
  // the worst single element against the typical magnitude (a wrong 16x16 fragment in a large
  // matrix barely moves the 2-norm but shows up here).
  ErrorSum error;
  long first_bad = -1;
  long max_err_at = 0;  // where error.max_abs() is, for the message
  for (long i = 0; i < c_elems; ++i) {
    const double out = Host<T>::to_double(c_all[static_cast<std::size_t>(kGuard + c_offset + i)]);
    const double ref = c_ref[static_cast<std::size_t>(i)];
    if (!std::isfinite(out) && first_bad < 0) first_bad = i;
    const double before = error.max_abs();
    error.add(out, ref);
    if (error.max_abs() > before) max_err_at = i;
  }
  ASSERT_EQ(error.nonfinite(), 0u) << "non-finite (or never written) elements; the first at row " << first_bad % M
                                   << ", column " << first_bad / M;
  ASSERT_GT(error.ref2(), 0.0);
  EXPECT_LT(error.relative(), 1e-2) << "relative error in the 2-norm";
  // Rounding the output to 16 bits moves an element by at most 2^-9 of itself (bf16), a few rms.
  const double max_err = error.max_abs();
  const double rms_ref = std::sqrt(error.ref2() / static_cast<double>(c_elems));
  const double worst_out = Host<T>::to_double(c_all[static_cast<std::size_t>(kGuard + c_offset + max_err_at)]);
  EXPECT_LT(max_err / rms_ref, 5e-2) << "worst element at row " << max_err_at % M << ", column " << max_err_at / M
                                     << ": " << worst_out << " instead of "
                                     << c_ref[static_cast<std::size_t>(max_err_at)];
}

// --- shapes, each for bf16 and fp16 ---------------------------------------------------------------
// TEST(MatmulWmma, Bf16<name>) and TEST(MatmulWmma, Fp16<name>), each check_matmul<T>(M, N, K[, c_offset]).
#define WMMA_SHAPE_TESTS(name, ...)           \
  TEST(MatmulWmma, Bf16##name) {              \
    WFLOPS_REQUIRE_GPU();                     \
    check_matmul<__nv_bfloat16>(__VA_ARGS__); \
  }                                           \
  TEST(MatmulWmma, Fp16##name) {              \
    WFLOPS_REQUIRE_GPU();                     \
    check_matmul<__half>(__VA_ARGS__);        \
  }

WMMA_SHAPE_TESTS(ExactTiles, 256, 256, 128)
WMMA_SHAPE_TESTS(OddMAndN, 129, 77, 64)
WMMA_SHAPE_TESTS(OneElement, 1, 1, 8)
WMMA_SHAPE_TESTS(RaggedK, 300, 200, 1000)                   // 1000 = 31 k-tiles of 32 + 8
WMMA_SHAPE_TESTS(MMultipleOf8PartialTiles, 136, 33, 40)     // 16-byte stores with a partial block tile
WMMA_SHAPE_TESTS(MisalignedC, 256, 64, 64, /*c_offset=*/1)  // element stores everywhere
WMMA_SHAPE_TESTS(Large, 1024, 2048, 512)

// --- refusals ------------------------------------------------------------------------------------
TEST(MatmulWmma, RefusesUnsupportedArgumentsWithoutLaunching) {
  WFLOPS_REQUIRE_GPU();
  const DeviceBuffer d_a(1 << 16), d_b(1 << 16), d_c(1 << 16);
  using wflops::kernels::matmul_wmma;
  EXPECT_EQ(matmul_wmma(DType::bf16, d_a.get(), d_b.get(), d_c.get(), 16, 16, 12, nullptr),
            cudaErrorInvalidValue);  // K % 8 != 0
  EXPECT_EQ(matmul_wmma(DType::fp32, d_a.get(), d_b.get(), d_c.get(), 16, 16, 16, nullptr), cudaErrorInvalidValue);
  const void* a_misaligned = static_cast<const char*>(d_a.get()) + 2;
  EXPECT_EQ(matmul_wmma(DType::bf16, a_misaligned, d_b.get(), d_c.get(), 16, 16, 16, nullptr), cudaErrorInvalidValue);
  ASSERT_CUDA_OK(cudaDeviceSynchronize());
}

}  // namespace
