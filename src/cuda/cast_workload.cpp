#include "cuda/cast_workload.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/rotated_inputs.hpp"
#include "elementwise/cast.cuh"
#include "numeric_formats.hpp"
#include "reference/verify_error.hpp"

namespace wflops {

namespace {

bool castable(DType in, DType out) {
  const bool narrow = out == DType::bf16 || out == DType::fp16;
  const bool wide = in == DType::bf16 || in == DType::fp16;
  return (in == DType::fp32 && narrow) || (out == DType::fp32 && wide);
}

// The stored bits of element i of an fp32/bf16/fp16 array.
std::uint32_t element_bits(DType t, const unsigned char* data, std::size_t i) {
  if (t == DType::fp32) {
    std::uint32_t b;
    std::memcpy(&b, data + 4 * i, 4);
    return b;
  }
  std::uint16_t h;
  std::memcpy(&h, data + 2 * i, 2);
  return h;
}

// Every value of a 16-bit format, by its bits (checking 2^28 elements one decode at a time
// would take seconds).
const std::vector<double>& decode_table(DType t) {
  static const auto build = [](DType type) {
    std::vector<double> table(65536);
    for (std::uint32_t b = 0; b < 65536; ++b) {
      const auto h = static_cast<std::uint16_t>(b);
      table[b] = type == DType::bf16 ? decode_bf16(h) : decode_fp16(h);
    }
    return table;
  };
  static const std::vector<double> bf16 = build(DType::bf16), fp16 = build(DType::fp16);
  return t == DType::bf16 ? bf16 : fp16;
}

double bits_value(DType t, std::uint32_t bits) {
  if (t == DType::bf16 || t == DType::fp16) return decode_table(t)[bits & 0xFFFFu];
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::uint32_t expected_bits(DType in, std::uint32_t in_bits, DType out) {
  if (in == out) return in_bits;
  if (in == DType::fp32) {
    float x;
    std::memcpy(&x, &in_bits, 4);
    return out == DType::bf16 ? kernels::float_to_bf16_bits_host(x) : kernels::float_to_fp16_bits_host(x);
  }
  // Widening is exact: every bf16/fp16 value is an fp32 value.
  const auto wide = static_cast<float>(bits_value(in, in_bits));
  std::uint32_t w;
  std::memcpy(&w, &wide, 4);
  return w;
}

// A cast (or, with in == out == fp32, a copy) of n elements, input sets rotated for L2.
class CastWorkload final : public Workload {
 public:
  CastWorkload(DType in, DType out, std::size_t n, bool copy) : in_(in), out_(out), n_(n), copy_(copy) {
    if (n_ == 0) throw std::invalid_argument("a cast needs at least one element");
    if (!copy_ && !castable(in_, out_)) {
      throw std::invalid_argument(
          fmt::format("no cast from {} to {} (fp32 <-> bf16/fp16 only)", dtype_name(in_), dtype_name(out_)));
    }
    in_id_ = inputs_.add("in", in_, n_);
    out_bytes_ = n_ * dtype_bytes(out_);
  }

  // What one launch reads (the padding between copies is not read).
  double input_bytes() const override { return static_cast<double>(inputs_.data_bytes()); }
  double device_bytes(int sets) const override { return inputs_.device_bytes(sets) + static_cast<double>(out_bytes_); }

  void allocate(int sets, cudaStream_t stream) override {
    inputs_.allocate(sets);
    out_buf_ = DeviceBuffer(out_bytes_);
    inputs_.fill_all(stream);
    CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  Verification verify(cudaStream_t stream) override {
    inputs_.fill(0, stream);
    Verification v = check(stream, n_);
    if (!v.ok || copy_) return v;
    // The scalar tail: an odd count stops mid-vector; the element after it must stay unwritten.
    std::size_t odd = std::min<std::size_t>(n_, std::size_t{1} << 20) - 1;
    if (odd % 2 == 0 && odd > 0) --odd;
    if (odd == 0) return v;
    const Verification tail = check(stream, odd);
    if (!tail.ok) return tail;
    std::vector<unsigned char> after(dtype_bytes(out_));
    CUDA_CHECK(cudaMemcpy(after.data(), static_cast<const char*>(out_buf_.get()) + odd * after.size(), after.size(),
                          cudaMemcpyDeviceToHost));
    if (!std::isnan(decode_element(out_, after.data(), 0))) {
      v.ok = false;
      v.detail = fmt::format("a cast of {} elements wrote element {} (past its end)", odd, odd);
      return v;
    }
    v.detail += fmt::format("; and a cast of {} (odd) elements through the scalar tail", odd);
    return v;
  }

  void launch(cudaStream_t stream, int set) override { run(stream, set, n_); }

 private:
  void* in(int set) const { return inputs_.ptr(in_id_, set); }

  void run(cudaStream_t stream, int set, std::size_t count) {
    if (copy_) {
      CUDA_CHECK(cudaMemcpyAsync(out_buf_.get(), in(set), count * dtype_bytes(in_), cudaMemcpyDeviceToDevice, stream));
    } else {
      CUDA_CHECK(kernels::cast(in_, in(set), out_, out_buf_.get(), count, stream));
    }
  }

  // Poisons the whole output (0xFF bytes: NaN in fp32, bf16 and fp16), runs `count` elements of
  // set 0, compares them all.
  Verification check(cudaStream_t stream, std::size_t count) {
    CUDA_CHECK(cudaMemsetAsync(out_buf_.get(), 0xFF, out_bytes_, stream));
    run(stream, 0, count);
    CUDA_CHECK(cudaStreamSynchronize(stream));
    return verify_cast(in_, in(0), out_, out_buf_.get(), count);
  }

  DType in_, out_;
  std::size_t n_;
  bool copy_;
  RotatedInputs inputs_;  // the n input elements, every set in one allocation
  RotatedInputs::Id in_id_;
  std::size_t out_bytes_ = 0;
  DeviceBuffer out_buf_;
};

}  // namespace

std::unique_ptr<Workload> make_cast_workload(DType in, DType out, std::size_t n) {
  return std::make_unique<CastWorkload>(in, out, n, false);
}

std::unique_ptr<Workload> make_copy_workload(std::size_t n) {
  return std::make_unique<CastWorkload>(DType::fp32, DType::fp32, n, true);
}

Verification verify_cast(DType in_dtype, const void* in, DType out_dtype, const void* out, std::size_t n) {
  Verification v;
  v.tolerance = 0;  // bit-exact
  if (in_dtype != out_dtype && !castable(in_dtype, out_dtype)) {
    v.detail = fmt::format("no cast from {} to {}", dtype_name(in_dtype), dtype_name(out_dtype));
    return v;
  }
  // In pieces of 16M elements, so checking 2^28 elements needs little host memory.
  constexpr std::size_t kPiece = std::size_t{1} << 24;
  const std::size_t ein = dtype_bytes(in_dtype), eout = dtype_bytes(out_dtype);
  std::vector<unsigned char> in_host(std::min(n, kPiece) * ein), out_host(std::min(n, kPiece) * eout);
  std::size_t mismatches = 0, first_bad = 0;
  std::uint32_t first_got = 0, first_want = 0;
  ErrorSum error;  // of the decoded values: the figure reported beside the bit-exact verdict
  for (std::size_t begin = 0; begin < n; begin += kPiece) {
    const std::size_t count = std::min(kPiece, n - begin);
    CUDA_CHECK(
        cudaMemcpy(in_host.data(), static_cast<const char*>(in) + begin * ein, count * ein, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(out_host.data(), static_cast<const char*>(out) + begin * eout, count * eout,
                          cudaMemcpyDeviceToHost));
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint32_t want = expected_bits(in_dtype, element_bits(in_dtype, in_host.data(), i), out_dtype);
      const std::uint32_t got = element_bits(out_dtype, out_host.data(), i);
      error.add(bits_value(out_dtype, got), bits_value(out_dtype, want));
      if (got != want) {
        if (mismatches == 0) {
          first_bad = begin + i;
          first_got = got;
          first_want = want;
        }
        ++mismatches;
      }
    }
  }
  v.rel_err = error.relative();
  // The verdict is bit-exactness, which a relative error under a tolerance cannot state; and an
  // all-zero reference (all inputs zero) checks nothing, so it fails.
  const bool zero_reference = error.ref2() == 0;
  v.ok = mismatches == 0 && !zero_reference;
  if (mismatches) {
    v.detail = fmt::format(
        "{} of {} outputs differ from the exact conversion (first: element {}, bits {:#x}, "
        "expected {:#x})",
        mismatches, n, first_bad, first_got, first_want);
  } else if (zero_reference) {
    v.detail = fmt::format("all {} inputs are zero: nothing was checked", n);
  } else {
    v.detail = fmt::format("all {} outputs bit-exact ({} -> {}, round to nearest even)", n, dtype_name(in_dtype),
                           dtype_name(out_dtype));
  }
  return v;
}

}  // namespace wflops
