// The elementwise kernels of the MLP step (bias add, activation forward/backward, residual add,
// bias gradient, cast, AdamW) against their host references, on random data, at sizes that are
// and are not multiples of the vector width, with misaligned pointers (the scalar path), aliased
// outputs, and poisoned outputs (an element past the end must stay unwritten). Skipped with a
// reason where there is no GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/fill_random.cuh"
#include "cuda/cast_workload.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/harness.hpp"
#include "elementwise/activation.cuh"
#include "elementwise/adamw.cuh"
#include "elementwise/bias_add.cuh"
#include "elementwise/bias_grad.cuh"
#include "elementwise/cast.cuh"
#include "elementwise/residual_add.cuh"
#include "gpu_test_util.hpp"
#include "numeric_formats.hpp"
#include "reference/verify_error.hpp"

namespace wflops::kernels {

namespace {

const DType kDtypes[] = {DType::fp32, DType::fp16, DType::bf16};
const std::size_t kSizes[] = {1, 7, 4099, std::size_t{1} << 20};
const Activation kActivations[] = {Activation::none, Activation::relu, Activation::gelu};

// Extra elements allocated past every array: poisoned, they must still be NaN afterwards.
constexpr std::size_t kGuard = 16;

// Per-element bound: |got - ref| <= element_tolerance * |ref| + absolute_floor. The relative
// part is about two units in the last place of the output type; the floor covers results near 0
// (e.g. GELU' near its root at -0.75), where the fp32 arithmetic's absolute error (~1e-7 for
// operands below 2) is larger than any relative bound.
double element_tolerance(DType t) {
  switch (t) {
    case DType::fp16: return 2.0 / 2048;
    case DType::bf16: return 2.0 / 256;
    default: return 1e-5;
  }
}
double absolute_floor(DType t) { return t == DType::bf16 ? 1e-5 : 1e-6; }

// A device array of n elements of t (plus the guard), poisoned with NaN (0xFF bytes).
struct Array {
  Array(DType type, std::size_t count) : t(type), n(count), buf((count + kGuard) * dtype_bytes(type)) {
    CUDA_CHECK(cudaMemset(buf.get(), 0xFF, buf.bytes()));
  }
  void randomize() { CUDA_CHECK(fill_random(t, buf.get(), n, fresh_seed(), nullptr)); }
  void* get(std::size_t offset = 0) const { return static_cast<char*>(buf.get()) + offset * dtype_bytes(t); }
  // Elements [offset, offset + count) decoded on the host.
  std::vector<double> values(std::size_t offset, std::size_t count) const {
    std::vector<unsigned char> raw(count * dtype_bytes(t));
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemcpy(raw.data(), get(offset), raw.size(), cudaMemcpyDeviceToHost));
    std::vector<double> out(count);
    for (std::size_t i = 0; i < count; ++i) out[i] = decode_element(t, raw.data(), i);
    return out;
  }
  std::vector<double> values() const { return values(0, n); }
  std::vector<unsigned char> bytes() const {
    std::vector<unsigned char> raw(buf.bytes());
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemcpy(raw.data(), buf.get(), raw.size(), cudaMemcpyDeviceToHost));
    return raw;
  }
  DType t;
  std::size_t n;
  DeviceBuffer buf;
};

// Compares got with ref: every element finite and within element_tolerance, and the relative error
// ||got - ref|| / ||ref|| under the dtype's verification tolerance.
void expect_close(DType t, const std::vector<double>& got, const std::vector<double>& ref, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double e = got[i] - ref[i];
    if (!(std::fabs(e) <= element_tolerance(t) * std::fabs(ref[i]) + absolute_floor(t))) {
      if (bad++ < 3) ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", expected " << ref[i];
    }
  }
  EXPECT_EQ(bad, 0u) << what;
  EXPECT_LT(relative_error(got, ref), dtype_tolerance(t)) << what;
}

// The guard element right after the written range is still poison.
void expect_untouched(const Array& a, std::size_t index, const std::string& what) {
  const double v = a.values(index, 1)[0];
  EXPECT_TRUE(std::isnan(v)) << what << ": element " << index << " past the end was written (" << v << ")";
}

// A result computed one element in (misaligned, the scalar path) for elements 1 .. n-1 of ref:
// it matches ref from there on, and the guard after it is untouched.
void expect_shifted_close(DType t, const Array& shifted, const std::vector<double>& ref, const std::string& what) {
  const std::size_t n = ref.size();
  expect_close(t, shifted.values(1, n - 1), std::vector<double>(ref.begin() + 1, ref.end()), what + " unaligned");
  expect_untouched(shifted, n, what + " unaligned");
}

std::string name_of(DType t, std::size_t n, const char* extra = "") {
  return std::string(dtype_name(t)) + " n=" + std::to_string(n) + extra;
}

// check(t, act, n, what) for every dtype, activation and size, `what` naming the case.
template <class Check>
void for_each_activation_case(Check check) {
  for (DType t : kDtypes) {
    for (Activation act : kActivations) {
      for (std::size_t n : kSizes) check(t, act, n, name_of(t, n, " ") + activation_name(act));
    }
  }
}

}  // namespace

TEST(ElementwiseKernels, ActivationForwardMatchesHost) {
  WFLOPS_REQUIRE_GPU();
  for_each_activation_case([](DType t, Activation act, std::size_t n, const std::string& what) {
    Array in(t, n + 1), out(t, n + 1);
    in.randomize();
    ASSERT_EQ(activation_forward(t, act, in.get(), out.get(), n, nullptr), cudaSuccess) << what;
    const std::vector<double> x = in.values(0, n);
    std::vector<double> ref(n);
    for (std::size_t i = 0; i < n; ++i) ref[i] = activation_host(act, x[i]);
    expect_close(t, out.values(0, n), ref, what);
    expect_untouched(out, n, what);
    // Misaligned by one element (the scalar path), and in place (out == in).
    if (n > 1) {
      Array shifted(t, n + 1);
      ASSERT_EQ(activation_forward(t, act, in.get(1), shifted.get(1), n - 1, nullptr), cudaSuccess);
      expect_shifted_close(t, shifted, ref, what);
      expect_untouched(shifted, 0, what + " unaligned");
    }
    ASSERT_EQ(activation_forward(t, act, in.get(), in.get(), n, nullptr), cudaSuccess);
    expect_close(t, in.values(0, n), ref, what + " in place");
  });
}

TEST(ElementwiseKernels, ActivationBackwardMatchesHost) {
  WFLOPS_REQUIRE_GPU();
  for_each_activation_case([](DType t, Activation act, std::size_t n, const std::string& what) {
    Array dout(t, n + 1), pre(t, n + 1), dh(t, n + 1);
    dout.randomize();
    pre.randomize();
    ASSERT_EQ(activation_backward(t, act, dout.get(), pre.get(), dh.get(), n, nullptr), cudaSuccess) << what;
    const std::vector<double> g = dout.values(0, n), x = pre.values(0, n);
    std::vector<double> ref(n);
    for (std::size_t i = 0; i < n; ++i) ref[i] = g[i] * activation_derivative_host(act, x[i]);
    expect_close(t, dh.values(0, n), ref, what);
    expect_untouched(dh, n, what);
    if (n > 1) {
      Array shifted(t, n + 1);
      ASSERT_EQ(activation_backward(t, act, dout.get(1), pre.get(1), shifted.get(1), n - 1, nullptr), cudaSuccess);
      expect_shifted_close(t, shifted, ref, what);
    }
    // dh aliasing dout, as the MLP step uses it.
    ASSERT_EQ(activation_backward(t, act, dout.get(), pre.get(), dout.get(), n, nullptr), cudaSuccess);
    expect_close(t, dout.values(0, n), ref, what + " in place");
  });
}

TEST(ElementwiseKernels, ReluDerivativeAtZeroIsZero) {
  WFLOPS_REQUIRE_GPU();
  Array dout(DType::fp32, 8), pre(DType::fp32, 8), dh(DType::fp32, 8);
  const float g[8] = {1, 1, 1, 1, 1, 1, 1, 1}, x[8] = {0.0f, -0.0f, 1e-30f, -1e-30f, 2, -2, 0.5f, 0.0f};
  CUDA_CHECK(cudaMemcpy(dout.get(), g, sizeof g, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(pre.get(), x, sizeof x, cudaMemcpyHostToDevice));
  ASSERT_EQ(activation_backward(DType::fp32, Activation::relu, dout.get(), pre.get(), dh.get(), 8, nullptr),
            cudaSuccess);
  EXPECT_EQ(dh.values(0, 8), (std::vector<double>{0, 0, 1, 0, 1, 0, 1, 0}));
}

TEST(ElementwiseKernels, ResidualAddMatchesHost) {
  WFLOPS_REQUIRE_GPU();
  for (DType t : kDtypes) {
    for (std::size_t n : kSizes) {
      const std::string what = name_of(t, n);
      Array a(t, n + 1), b(t, n + 1), out(t, n + 1);
      a.randomize();
      b.randomize();
      ASSERT_EQ(residual_add(t, a.get(), b.get(), out.get(), n, nullptr), cudaSuccess) << what;
      const std::vector<double> x = a.values(0, n), y = b.values(0, n);
      std::vector<double> ref(n);
      for (std::size_t i = 0; i < n; ++i) ref[i] = x[i] + y[i];
      expect_close(t, out.values(0, n), ref, what);
      expect_untouched(out, n, what);
      if (n > 1) {
        Array shifted(t, n + 1);
        ASSERT_EQ(residual_add(t, a.get(1), b.get(1), shifted.get(1), n - 1, nullptr), cudaSuccess);
        expect_shifted_close(t, shifted, ref, what);
      }
      ASSERT_EQ(residual_add(t, a.get(), b.get(), a.get(), n, nullptr), cudaSuccess);  // out aliases a
      expect_close(t, a.values(0, n), ref, what + " in place");
    }
  }
}

TEST(ElementwiseKernels, BiasAddMatchesHost) {
  WFLOPS_REQUIRE_GPU();
  struct Shape {
    long rows, cols;
  };
  for (DType t : kDtypes) {
    for (Shape s : {Shape{37, 1000}, Shape{37, 1003}, Shape{1, 8}, Shape{5000, 16}, Shape{3, 1}}) {
      const std::string what = std::string(dtype_name(t)) + " " + std::to_string(s.rows) + "x" + std::to_string(s.cols);
      const std::size_t n = static_cast<std::size_t>(s.rows * s.cols);
      Array in(t, n), bias(t, static_cast<std::size_t>(s.cols)), out(t, n);
      in.randomize();
      bias.randomize();
      ASSERT_EQ(bias_add(t, in.get(), bias.get(), out.get(), s.rows, s.cols, nullptr), cudaSuccess) << what;
      const std::vector<double> x = in.values(), b = bias.values();
      std::vector<double> ref(n);
      for (std::size_t i = 0; i < n; ++i) ref[i] = x[i] + b[i % static_cast<std::size_t>(s.cols)];
      expect_close(t, out.values(), ref, what);
      expect_untouched(out, n, what);
      ASSERT_EQ(bias_add(t, in.get(), bias.get(), in.get(), s.rows, s.cols, nullptr), cudaSuccess);
      expect_close(t, in.values(), ref, what + " in place");
    }
  }
}

TEST(ElementwiseKernels, BiasGradMatchesHostAndIsDeterministic) {
  WFLOPS_REQUIRE_GPU();
  struct Shape {
    long rows, cols;
  };
  for (DType t : kDtypes) {
    for (DType db_t : {DType::fp32, t}) {
      for (Shape s : {Shape{37, 1000}, Shape{37, 1003}, Shape{1, 5}, Shape{4099, 64}, Shape{8192, 1600}}) {
        const std::string what = std::string(dtype_name(t)) + "->" + std::string(dtype_name(db_t)) + " " +
                                 std::to_string(s.rows) + "x" + std::to_string(s.cols);
        const std::size_t cols = static_cast<std::size_t>(s.cols), n = static_cast<std::size_t>(s.rows) * cols;
        Array d(t, n), db(db_t, cols), again(db_t, cols);
        d.randomize();
        ASSERT_EQ(bias_grad(t, d.get(), db_t, db.get(), s.rows, s.cols, nullptr), cudaSuccess) << what;
        const std::vector<double> x = d.values();
        std::vector<double> ref(cols, 0.0), magnitude(cols, 0.0);
        for (std::size_t i = 0; i < n; ++i) {
          ref[i % cols] += x[i];
          magnitude[i % cols] += std::fabs(x[i]);
        }
        // fp32 accumulation of `rows` terms: besides the output's rounding, allow 1e-6 of the sum
        // of magnitudes (a column sum can be near 0 while its terms are not). A lost or doubled
        // row moves a sum by ~0.5, far more.
        const std::vector<double> got = db.values();
        std::size_t bad = 0;
        for (std::size_t c = 0; c < cols; ++c) {
          const double e = got[c] - ref[c];
          if (!(std::fabs(e) <= element_tolerance(db_t) * std::fabs(ref[c]) + 1e-6 * magnitude[c])) {
            if (bad++ < 3) ADD_FAILURE() << what << ": column " << c << " is " << got[c] << ", expected " << ref[c];
          }
        }
        EXPECT_EQ(bad, 0u) << what;
        EXPECT_LT(relative_error(got, ref), dtype_tolerance(db_t)) << what;
        expect_untouched(db, cols, what);
        // Same inputs, same bits.
        ASSERT_EQ(bias_grad(t, d.get(), db_t, again.get(), s.rows, s.cols, nullptr), cudaSuccess);
        EXPECT_EQ(db.bytes(), again.bytes()) << what << ": two runs differ";
      }
    }
  }
}

TEST(ElementwiseKernels, BiasGradOfNoRowsIsZeroAndBadTypesAreRefused) {
  WFLOPS_REQUIRE_GPU();
  Array db(DType::fp32, 10);
  ASSERT_EQ(bias_grad(DType::bf16, nullptr, DType::fp32, db.get(), 0, 10, nullptr), cudaSuccess);
  EXPECT_EQ(db.values(), std::vector<double>(10, 0.0));
  EXPECT_EQ(bias_grad(DType::bf16, db.get(), DType::fp16, db.get(), 4, 2, nullptr), cudaErrorInvalidValue);
}

TEST(ElementwiseKernels, CastIsBitExact) {
  WFLOPS_REQUIRE_GPU();
  const std::pair<DType, DType> kinds[] = {
      {DType::fp32, DType::bf16}, {DType::fp32, DType::fp16}, {DType::bf16, DType::fp32}, {DType::fp16, DType::fp32}};
  for (const auto& [from, to] : kinds) {
    for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{4099}, (std::size_t{1} << 20) + 3}) {
      const std::string what =
          std::string(dtype_name(from)) + "->" + std::string(dtype_name(to)) + " n=" + std::to_string(n);
      Array in(from, n + 1), out(to, n + 1);
      in.randomize();
      ASSERT_EQ(cast(from, in.get(), to, out.get(), n, nullptr), cudaSuccess) << what;
      CUDA_CHECK(cudaDeviceSynchronize());
      const Verification v = verify_cast(from, in.get(), to, out.get(), n);
      EXPECT_TRUE(v.ok) << what << ": " << v.detail;
      EXPECT_EQ(v.rel_err, 0.0) << what;
      expect_untouched(out, n, what);
      if (n > 1) {  // misaligned: the scalar path
        Array shifted(to, n + 1);
        ASSERT_EQ(cast(from, in.get(1), to, shifted.get(1), n - 1, nullptr), cudaSuccess);
        CUDA_CHECK(cudaDeviceSynchronize());
        const Verification u = verify_cast(from, in.get(1), to, shifted.get(1), n - 1);
        EXPECT_TRUE(u.ok) << what << " unaligned: " << u.detail;
        expect_untouched(shifted, 0, what + " unaligned");
      }
    }
  }
  EXPECT_EQ(cast(DType::bf16, nullptr, DType::fp16, nullptr, 4, nullptr), cudaErrorInvalidValue);
}

TEST(ElementwiseKernels, CastEdgeCasesMatchTheHostRounding) {
  WFLOPS_REQUIRE_GPU();
  // Ties, overflow, fp16 subnormals and signed zeros, 16 of each kind so they go through the
  // vector path.
  std::vector<std::uint32_t> bits = {0x3F808000u, 0x3F818000u, 0x3F808001u, 0x3F807FFFu, 0x7F7FFFFFu, 0x7F800000u,
                                     0xFF800000u, 0x80000000u, 0x00000000u, 0x477FEFFFu, 0x477FF000u, 0x33800000u,
                                     0x33000000u, 0x33C00000u, 0x387FC000u, 0x3F801000u};
  std::vector<float> x;
  for (int k = 0; k < 16; ++k) {
    for (std::uint32_t b : bits) {
      float f;
      const std::uint32_t flipped = b ^ (k % 2 ? 0x80000000u : 0u);
      std::memcpy(&f, &flipped, 4);
      x.push_back(f);
    }
  }
  const std::size_t n = x.size();
  Array in(DType::fp32, n), to_bf16(DType::bf16, n), to_fp16(DType::fp16, n);
  CUDA_CHECK(cudaMemcpy(in.get(), x.data(), n * 4, cudaMemcpyHostToDevice));
  ASSERT_EQ(cast(DType::fp32, in.get(), DType::bf16, to_bf16.get(), n, nullptr), cudaSuccess);
  ASSERT_EQ(cast(DType::fp32, in.get(), DType::fp16, to_fp16.get(), n, nullptr), cudaSuccess);
  const std::vector<unsigned char> b16 = to_bf16.bytes(), h16 = to_fp16.bytes();
  for (std::size_t i = 0; i < n; ++i) {
    std::uint16_t b, h;
    std::memcpy(&b, b16.data() + 2 * i, 2);
    std::memcpy(&h, h16.data() + 2 * i, 2);
    EXPECT_EQ(b, float_to_bf16_bits_host(x[i])) << std::hexfloat << x[i];
    EXPECT_EQ(h, float_to_fp16_bits_host(x[i])) << std::hexfloat << x[i];
  }
}

TEST(ElementwiseKernels, CastWidensEvery16BitValueExactly) {
  WFLOPS_REQUIRE_GPU();
  for (DType from : {DType::bf16, DType::fp16}) {
    std::vector<std::uint16_t> all(65536);
    for (std::uint32_t b = 0; b < 65536; ++b) all[b] = static_cast<std::uint16_t>(b);
    Array in(from, all.size()), out(DType::fp32, all.size());
    CUDA_CHECK(cudaMemcpy(in.get(), all.data(), all.size() * 2, cudaMemcpyHostToDevice));
    ASSERT_EQ(cast(from, in.get(), DType::fp32, out.get(), all.size(), nullptr), cudaSuccess);
    const std::vector<double> got = out.values();
    for (std::uint32_t b = 0; b < 65536; ++b) {
      const double want = decode_element(from, all.data(), b);
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(got[b])) << b;
      } else {
        EXPECT_EQ(got[b], want) << dtype_name(from) << " bits " << b;
      }
    }
  }
}

TEST(ElementwiseKernels, AdamWMatchesHost) {
  WFLOPS_REQUIRE_GPU();
  AdamW opt;
  opt.lr = 1e-3f;
  for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{4099}, std::size_t{1} << 20, std::size_t{1001}}) {
    // n = 1001 runs on arrays shifted by one element: the scalar path.
    const std::size_t off = n == 1001 ? 1 : 0;
    const std::string what = "n=" + std::to_string(n) + (off ? " unaligned" : "");
    Array p(DType::fp32, n + off), g(DType::fp32, n + off), m(DType::fp32, n + off), v(DType::fp32, n + off);
    p.randomize();
    CUDA_CHECK(cudaMemset(m.get(), 0, (n + off) * 4));
    CUDA_CHECK(cudaMemset(v.get(), 0, (n + off) * 4));
    std::vector<double> hp = p.values(off, n), hm(n, 0.0), hv(n, 0.0);
    for (int step = 1; step <= 3; ++step) {
      g.randomize();  // fresh gradients each step
      const std::vector<double> hg = g.values(off, n);
      ASSERT_EQ(adamw_step(opt, step, static_cast<float*>(p.get(off)), static_cast<const float*>(g.get(off)),
                           static_cast<float*>(m.get(off)), static_cast<float*>(v.get(off)), n, nullptr),
                cudaSuccess)
          << what;
      for (std::size_t i = 0; i < n; ++i) adamw_step_host(opt, step, hp[i], hg[i], hm[i], hv[i]);
      EXPECT_LT(relative_error(p.values(off, n), hp), 1e-6) << what << " step " << step << " param";
      EXPECT_LT(relative_error(m.values(off, n), hm), 1e-6) << what << " step " << step << " m";
      EXPECT_LT(relative_error(v.values(off, n), hv), 1e-6) << what << " step " << step << " v";
      expect_untouched(p, off + n, what);
    }
  }
}

TEST(CastWorkload, VerifiesCastsAndCopy) {
  WFLOPS_REQUIRE_GPU();
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreate(&stream));
  for (std::size_t n : {std::size_t{4096}, (std::size_t{1} << 20) + 8}) {
    std::vector<std::unique_ptr<Workload>> workloads;
    workloads.push_back(make_copy_workload(n));
    workloads.push_back(make_cast_workload(DType::fp32, DType::bf16, n));
    workloads.push_back(make_cast_workload(DType::fp32, DType::fp16, n));
    workloads.push_back(make_cast_workload(DType::bf16, DType::fp32, n));
    workloads.push_back(make_cast_workload(DType::fp16, DType::fp32, n));
    for (auto& w : workloads) {
      w->allocate(2, stream);
      const Verification v = w->verify(stream);
      EXPECT_TRUE(v.ok) << v.detail;
      EXPECT_EQ(v.rel_err, 0.0);
      w->launch(stream, 1);
      CUDA_CHECK(cudaStreamSynchronize(stream));
    }
  }
  CUDA_CHECK(cudaStreamDestroy(stream));
}

TEST(CastWorkload, VerificationCatchesAWrongRounding) {
  WFLOPS_REQUIRE_GPU();
  const std::size_t n = 1000;
  Array in(DType::fp32, n), out(DType::bf16, n);
  in.randomize();
  ASSERT_EQ(cast(DType::fp32, in.get(), DType::bf16, out.get(), n, nullptr), cudaSuccess);
  CUDA_CHECK(cudaDeviceSynchronize());
  ASSERT_TRUE(verify_cast(DType::fp32, in.get(), DType::bf16, out.get(), n).ok);
  // Flip the last bit of one output: one ulp off is a failure, and so is one poisoned element.
  std::vector<unsigned char> raw = out.bytes();
  raw[2 * 500] ^= 1;
  CUDA_CHECK(cudaMemcpy(out.get(), raw.data(), 2 * n, cudaMemcpyHostToDevice));
  Verification v = verify_cast(DType::fp32, in.get(), DType::bf16, out.get(), n);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.detail.find("1 of 1000"), std::string::npos) << v.detail;
  CUDA_CHECK(cudaMemset(out.get(7), 0xFF, 2));
  v = verify_cast(DType::fp32, in.get(), DType::bf16, out.get(), n);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.detail.find("2 of 1000"), std::string::npos) << v.detail;
}

}  // namespace wflops::kernels
