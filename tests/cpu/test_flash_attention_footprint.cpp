// The shared memory our fused attention kernels take per block, per head dim, and how many blocks of
// each that leaves room for on an A100 and an H100 SM (no GPU needed: the footprints are constexpr).
#include <gtest/gtest.h>

#include "attention/flash_attention_bwd.cuh"
#include "attention/flash_attention_fwd.cuh"

namespace {

using wflops::kernels::flash_backward_shared_bytes;
using wflops::kernels::flash_forward_shared_bytes;

constexpr long kKiB = 1024;

// Shared memory per SM and the most one block may ask for (dynamic, with the opt-in): compute
// capability 8.0 (A100) 164 KB and 163 KB, 9.0 (H100, H200) 228 KB and 227 KB (CUDA C++ Programming
// Guide, technical specifications per compute capability).
struct SmShared {
  long per_sm;
  long per_block;
};
constexpr SmShared kA100{164 * kKiB, 163 * kKiB};
constexpr SmShared kH100{228 * kKiB, 227 * kKiB};

// Blocks one SM holds as far as shared memory goes, as the toolkit's occupancy calculator
// (cuda_occupancy.h) counts them from compute capability 8.0 on: each block takes its own bytes plus
// the 1 KB the driver reserves per block (reservedSharedMemPerBlock), rounded up to 128 bytes.
constexpr long blocks_by_shared(long block_bytes, SmShared sm) {
  if (block_bytes > sm.per_block) return 0;
  const long allocated = (block_bytes + 1 * kKiB + 127) / 128 * 128;
  return sm.per_sm / allocated;
}

// Blocks of 128 threads one SM holds as far as registers go: 64 K 32-bit registers per SM (same
// table), allocated per warp in units of 256 from each of the SM's 4 sub-partitions of 16 K
// (cuda_occupancy.h, for compute capability 8.x and 9.x).
constexpr long blocks_by_registers(long registers_per_thread) {
  const long per_warp = (registers_per_thread * 32 + 255) / 256 * 256;
  const long warps = 65536 / 4 / per_warp * 4;
  return warps / 4;  // 4 warps a block
}

// Blocks per SM as far as shared memory goes, for a kernel whose block takes `bytes_d128` at head
// dim 128 and `bytes_d64` at 64: the hand counts on the A100 and on the H100.
struct BlocksPerSm {
  long a100_d128, a100_d64, h100_d128, h100_d64;
};
void expect_blocks_by_shared(long bytes_d128, long bytes_d64, BlocksPerSm want) {
  EXPECT_EQ(blocks_by_shared(bytes_d128, kA100), want.a100_d128) << "A100, d = 128";
  EXPECT_EQ(blocks_by_shared(bytes_d64, kA100), want.a100_d64) << "A100, d = 64";
  EXPECT_EQ(blocks_by_shared(bytes_d128, kH100), want.h100_d128) << "H100, d = 128";
  EXPECT_EQ(blocks_by_shared(bytes_d64, kH100), want.h100_d64) << "H100, d = 64";
}

TEST(FlashAttentionFootprint, ForwardBytesPerHeadDim) {
  // Two K and two V tiles of 64 rows of (d + 8) 16-bit elements; Q borrows K's second buffer.
  EXPECT_EQ(flash_forward_shared_bytes(64), 36 * kKiB);
  EXPECT_EQ(flash_forward_shared_bytes(128), 68 * kKiB);
}

TEST(FlashAttentionFootprint, ForwardFitsTwoBlocksPerA100SmAtHeadDim128) {
  expect_blocks_by_shared(flash_forward_shared_bytes(128), flash_forward_shared_bytes(64), {2, 4, 3, 6});
  // With a Q tile of its own (five tiles, 85 KiB at d = 128) an A100 SM held one block.
  EXPECT_EQ(blocks_by_shared(5 * 64 * (128 + 8) * 2, kA100), 1);
  // Registers never stop the second block: 128 threads of at most 255 registers. With the counts
  // ptxas gives (232 / 238 at d = 128, 129 / 130 at d = 64, sm_80 / sm_90a) they allow 2 and 3.
  EXPECT_EQ(blocks_by_registers(255), 2);
  EXPECT_EQ(blocks_by_registers(238), 2);
  EXPECT_EQ(blocks_by_registers(130), 3);
}

TEST(FlashAttentionFootprint, BackwardBytesPerHeadDim) {
  // K, V (64 rows), Q and dO double-buffered (2 x 2 x 32 rows), rows of (d + 8) 16-bit elements;
  // dS 32 x (64 + 8) 16-bit; L and D double-buffered, 4 x 32 floats.
  EXPECT_EQ(flash_backward_shared_bytes(64), 256 * 72 * 2 + 32 * 72 * 2 + 512);
  EXPECT_EQ(flash_backward_shared_bytes(64), 41 * kKiB);
  EXPECT_EQ(flash_backward_shared_bytes(128), 73 * kKiB);
}

TEST(FlashAttentionFootprint, BackwardDoubleBufferKeepsTwoBlocksPerSm) {
  // The backward's 128 threads use up to 255 registers each, so registers allow two blocks per SM;
  // shared memory allows at least as many on both GPUs.
  expect_blocks_by_shared(flash_backward_shared_bytes(128), flash_backward_shared_bytes(64), {2, 3, 3, 5});
  EXPECT_GE(blocks_by_shared(flash_backward_shared_bytes(128), kA100), blocks_by_registers(255));
  EXPECT_GE(blocks_by_shared(flash_backward_shared_bytes(64), kA100), blocks_by_registers(168));
  EXPECT_EQ(blocks_by_registers(168), 3);  // the most registers that still give three blocks
  EXPECT_EQ(blocks_by_registers(169), 2);
  EXPECT_EQ(blocks_by_registers(128), 4);
}

}  // namespace
