// The multi-tensor AdamW (kernels/elementwise/adamw_multi.cuh) against its fp64 host reference over two steps:
// tensors of 1, 1003, 4096 and 2 x kAdamWChunk + 3 elements (vector path with a scalar tail, several
// chunks), one misaligned by a float (element path) and an empty one; decay on and off; bf16,
// fp16 and no copies, each copy exactly the updated master rounded to nearest even. Skipped
// without a GPU.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

#include "elementwise/adamw_multi.cuh"
#include "elementwise/cast.cuh"
#include "gpu_test_util.hpp"
#include "model_kernel_test_util.hpp"
#include "reference/verify_error.hpp"

namespace wflops::kernels {

namespace {

using namespace ::wflops::testing;

struct Tensor {
  std::size_t n, offset;  // offset: floats before the tensor's first (1 = misaligned)
  bool decay, copy;
  DeviceBuffer param, grad, m, v, copy_buf;
  std::vector<double> hp, hm, hv;
};

}  // namespace

TEST(AdamWMultiKernel, TwoStepsMatchTheHost) {
  WFLOPS_REQUIRE_GPU();
  for (DType copy_dtype : {DType::bf16, DType::fp16}) {
    SCOPED_TRACE(dtype_name(copy_dtype));
    std::vector<Tensor> ts;
    for (auto [n, offset, decay, copy] :
         std::vector<std::tuple<std::size_t, std::size_t, bool, bool>>{{1, 0, true, true},
                                                                       {1003, 0, false, true},
                                                                       {4096, 0, true, false},
                                                                       {2 * kAdamWChunk + 3, 0, true, true},
                                                                       {1600, 1, false, true},
                                                                       {0, 0, true, true}}) {
      Tensor t;
      t.n = n;
      t.offset = offset;
      t.decay = decay;
      t.copy = copy;
      t.param = random_buffer(DType::fp32, n, offset);
      t.grad = DeviceBuffer((n + offset) * 4);
      t.m = DeviceBuffer((n + offset) * 4);
      t.v = DeviceBuffer((n + offset) * 4);
      if (n) {
        CUDA_CHECK(cudaMemset(t.m.get(), 0, t.m.bytes()));
        CUDA_CHECK(cudaMemset(t.v.get(), 0, t.v.bytes()));
      }
      if (copy) t.copy_buf = poisoned(copy_dtype, n, offset);
      t.hp = download(DType::fp32, offset_elements(t.param, DType::fp32, offset), n);
      t.hm.assign(n, 0.0);
      t.hv.assign(n, 0.0);
      ts.push_back(std::move(t));
    }
    std::vector<AdamWTensor> list;
    for (Tensor& t : ts) {
      AdamWTensor a;
      a.param = static_cast<float*>(offset_elements(t.param, DType::fp32, t.offset));
      a.grad = static_cast<const float*>(offset_elements(t.grad, DType::fp32, t.offset));
      a.m = static_cast<float*>(offset_elements(t.m, DType::fp32, t.offset));
      a.v = static_cast<float*>(offset_elements(t.v, DType::fp32, t.offset));
      a.copy = t.copy ? offset_elements(t.copy_buf, copy_dtype, t.offset) : nullptr;
      a.n = t.n;
      a.decay = t.decay;
      list.push_back(a);
    }
    AdamWMultiTable table;
    ASSERT_EQ(table.prepare(list), cudaSuccess);
    EXPECT_EQ(table.chunks(), adamw_chunks({1, 1003, 4096, 2 * kAdamWChunk + 3, 1600, 0}).size());
    AdamW opt;
    opt.lr = 1e-2f;  // large enough that two steps move the weights well past fp32 rounding
    for (int step = 1; step <= 2; ++step) {
      for (std::size_t i = 0; i < ts.size(); ++i) {
        if (ts[i].n == 0) continue;
        CUDA_CHECK(fill_random(DType::fp32, const_cast<float*>(list[i].grad), ts[i].n, fresh_seed(), nullptr));
      }
      std::vector<std::vector<double>> grads;
      for (std::size_t i = 0; i < ts.size(); ++i) grads.push_back(download(DType::fp32, list[i].grad, ts[i].n));
      ASSERT_EQ(adamw_multi_step(opt, step, copy_dtype, table, nullptr), cudaSuccess);
      CUDA_CHECK(cudaDeviceSynchronize());
      for (std::size_t i = 0; i < ts.size(); ++i) {
        Tensor& t = ts[i];
        SCOPED_TRACE(::testing::Message() << "tensor " << i << " n=" << t.n << " step " << step);
        adamw_multi_step_host(opt, step, t.decay, t.hp, grads[i], t.hm, t.hv);
        if (t.n == 0) continue;
        const std::vector<double> p = download(DType::fp32, list[i].param, t.n);
        EXPECT_LT(relative_error(p, t.hp), 1e-5) << "param";
        EXPECT_LT(relative_error(download(DType::fp32, list[i].m, t.n), t.hm), 1e-5) << "m";
        EXPECT_LT(relative_error(download(DType::fp32, list[i].v, t.n), t.hv), 1e-5) << "v";
        if (!t.copy) continue;
        const std::vector<unsigned char> raw = download_bytes(list[i].copy, t.n * 2);
        for (std::size_t e = 0; e < t.n; ++e) {
          const float f = static_cast<float>(p[e]);
          const std::uint16_t want =
              copy_dtype == DType::bf16 ? float_to_bf16_bits_host(f) : float_to_fp16_bits_host(f);
          std::uint16_t got = 0;
          std::memcpy(&got, raw.data() + 2 * e, 2);
          ASSERT_EQ(got, want) << "copy element " << e;
        }
        expect_written_exactly(copy_dtype, list[i].copy, t.n, "copy");
      }
    }
  }
}

TEST(AdamWMultiKernel, RefusesBadArguments) {
  WFLOPS_REQUIRE_GPU();
  AdamWMultiTable table;
  AdamWTensor missing;
  missing.n = 4;  // no pointers
  EXPECT_EQ(table.prepare({missing}), cudaErrorInvalidValue);
  EXPECT_EQ(adamw_multi_step(AdamW{}, 0, DType::bf16, table, nullptr), cudaErrorInvalidValue);  // steps count from 1
  EXPECT_EQ(adamw_multi_step(AdamW{}, 1, DType::bf16, table, nullptr), cudaSuccess);            // empty: nothing to do
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace wflops::kernels
