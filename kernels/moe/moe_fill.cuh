// Crafted inputs for the MoE workload: one column of a row-major bf16 matrix set to a value (a
// constant feature of every token, or a router weight that makes one expert win every token), and
// a bf16 array scaled in place.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>

namespace wflops::kernels {

// a[r, col] = value for every row r < rows (a is rows x cols, row-major).
cudaError_t moe_set_column(__nv_bfloat16* a, int rows, int cols, int col, float value, cudaStream_t stream);

// a[i] = bf16(a[i] * scale) for i < count (the router weights' U(-1, 1) narrowed to U(-b, b)).
cudaError_t moe_scale(__nv_bfloat16* a, std::size_t count, float scale, cudaStream_t stream);

}  // namespace wflops::kernels
