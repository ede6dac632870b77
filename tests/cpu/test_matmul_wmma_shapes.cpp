// The shapes and dtypes our wmma matmul accepts, and its CPU reference (no GPU needed).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dtype.hpp"
#include "matmul/matmul_wmma.cuh"

namespace {

using wflops::DType;
using wflops::kernels::matmul_tn_reference;
using wflops::kernels::matmul_wmma_unsupported_reason;

TEST(MatmulWmmaShapes, AcceptsAnyMAndNWithKMultipleOf8) {
  for (DType t : {DType::bf16, DType::fp16}) {
    EXPECT_EQ(matmul_wmma_unsupported_reason(t, 256, 256, 128), "");
    EXPECT_EQ(matmul_wmma_unsupported_reason(t, 129, 77, 64), "");
    EXPECT_EQ(matmul_wmma_unsupported_reason(t, 1, 1, 8), "");
    EXPECT_EQ(matmul_wmma_unsupported_reason(t, 300, 200, 1000), "");
    // M * K beyond 2^31: 64-bit indexing.
    EXPECT_EQ(matmul_wmma_unsupported_reason(t, 100000, 8, 65536), "");
  }
}

TEST(MatmulWmmaShapes, RefusesKNotMultipleOf8) {
  const std::string reason = matmul_wmma_unsupported_reason(DType::bf16, 128, 128, 1001);
  EXPECT_NE(reason.find("multiple of 8"), std::string::npos) << reason;
  EXPECT_NE(reason.find("1001"), std::string::npos) << reason;
}

TEST(MatmulWmmaShapes, RefusesDtypesOtherThan16Bit) {
  for (DType t : {DType::fp32, DType::tf32, DType::fp64, DType::fp8_e4m3, DType::int8}) {
    const std::string reason = matmul_wmma_unsupported_reason(t, 128, 128, 128);
    EXPECT_NE(reason, "") << wflops::dtype_name(t);
    EXPECT_NE(reason.find(std::string(wflops::dtype_name(t))), std::string::npos) << reason;
  }
}

TEST(MatmulWmmaShapes, RefusesEmptyAndOversizedShapes) {
  EXPECT_NE(matmul_wmma_unsupported_reason(DType::fp16, 0, 16, 16), "");
  EXPECT_NE(matmul_wmma_unsupported_reason(DType::fp16, 16, 0, 16), "");
  EXPECT_NE(matmul_wmma_unsupported_reason(DType::fp16, 16, 16, 0), "");
  EXPECT_NE(matmul_wmma_unsupported_reason(DType::fp16, -8, 16, 16), "");
  // N's 128-wide tiles go on gridDim.y, at most 65535 of them.
  EXPECT_EQ(matmul_wmma_unsupported_reason(DType::fp16, 8, 65535L * 128, 8), "");
  EXPECT_NE(matmul_wmma_unsupported_reason(DType::fp16, 8, 65535L * 128 + 1, 8), "");
}

// The wrapper refuses what it cannot run before making any CUDA call, so this needs no GPU (the
// pointers are host addresses that are never dereferenced).
TEST(MatmulWmmaShapes, WrapperRefusesBeforeAnyCudaCall) {
  alignas(16) static unsigned char fake[64];
  void* p = fake;
  using wflops::kernels::matmul_wmma;
  EXPECT_EQ(matmul_wmma(DType::bf16, p, p, p, 128, 128, 1001, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(matmul_wmma(DType::fp32, p, p, p, 128, 128, 128, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(matmul_wmma(DType::fp16, fake + 2, p, p, 128, 128, 128, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(matmul_wmma(DType::fp16, p, fake + 8, p, 128, 128, 128, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(matmul_wmma(DType::fp16, nullptr, p, p, 128, 128, 128, nullptr), cudaErrorInvalidValue);
}

TEST(MatmulWmmaReference, SmallTnProductByHand) {
  // A (2 x 3, row-major), B (2 x 3, row-major: rows are the columns of the math B).
  const std::vector<double> A = {1, 2, 3,  //
                                 4, 5, 6};
  const std::vector<double> B = {1, 0, -1,  //
                                 2, 1, 0};
  std::vector<double> C(4, -99.0);
  matmul_tn_reference(A.data(), B.data(), C.data(), 2, 2, 3);
  // C column-major: C(i,j) at C[i + 2j]; C(i,j) = sum_k A(i,k) B(j,k).
  EXPECT_EQ(C[0], 1 - 3);  // (0,0)
  EXPECT_EQ(C[1], 4 - 6);  // (1,0)
  EXPECT_EQ(C[2], 2 + 2);  // (0,1)
  EXPECT_EQ(C[3], 8 + 5);  // (1,1)
}

}  // namespace
