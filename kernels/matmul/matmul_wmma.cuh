// Our own plain tiled tensor-core matmul (nvcuda::wmma), to show what a straightforward kernel
// reaches next to cuBLAS. One operation, its CPU reference beside it (kernels/matmul/matmul_wmma.cu).
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "dtype.hpp"

namespace wflops::kernels {

// "TN" layout, the same as cuBLAS's op(A)=T, op(B)=N with column-major storage:
//   A: row-major M x K   (element (i,k) at A[i*K + k])
//   B: row-major N x K   (element (j,k) at B[j*K + k]) i.e. column j of the math B is contiguous
//   C: column-major M x N (element (i,j) at C[i + j*M])
// C = A * B^T computed with fp32 accumulation, stored in the same 16-bit type as A and B.
// dtype: DType::bf16 or DType::fp16. Requires an sm_80+ GPU.

// Returns "" if the shape/dtype is supported, else a clear reason, e.g.
// "K must be a multiple of 8 for 16-byte loads (K = 1001)". M and N may be any value >= 1.
std::string matmul_wmma_unsupported_reason(DType dtype, long M, long N, long K);

// Enqueues the kernel on `stream`; returns the first CUDA error (launch or configuration) or
// cudaSuccess. Never exits the process. Returns cudaErrorInvalidValue when the shape/dtype is
// unsupported (see matmul_wmma_unsupported_reason) or when A or B is not 16-byte aligned.
// C may have any 2-byte alignment (16-byte stores are used only when it allows them).
cudaError_t matmul_wmma(DType dtype, const void* A, const void* B, void* C, long M, long N, long K,
                        cudaStream_t stream);

// The plain CPU reference beside it: the same TN product in fp64 on double inputs
// (A row-major M x K, B row-major N x K, C column-major M x N).
void matmul_tn_reference(const double* A, const double* B, double* C, long M, long N, long K);

}  // namespace wflops::kernels
