// The input sets of the harness's L2 rotation without a GPU: RotatedInputs' size arithmetic
// (padding, offsets in both layouts, totals), and the memory every workload states, pinned as the
// workloads stated it before their input sets moved into RotatedInputs: input_bytes() decides how
// many sets are made, device_bytes() whether they fit, so neither may change.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/attention_workload.hpp"
#include "cuda/cast_workload.hpp"
#include "cuda/gemm.hpp"
#include "cuda/mlp_step.hpp"
#include "cuda/moe_layer.hpp"
#include "cuda/rotated_inputs.hpp"

namespace wflops {
namespace {

TEST(RotatedInputs, AlignsUpToTheDeviceBoundary) {
  EXPECT_EQ(kDeviceAlignment, 256u);
  EXPECT_EQ(align_up(0), 0u);
  EXPECT_EQ(align_up(1), 256u);
  EXPECT_EQ(align_up(256), 256u);
  EXPECT_EQ(align_up(257), 512u);
  EXPECT_EQ(align_up(100, 64), 128u);
  EXPECT_EQ(align_up(128, 64), 128u);
}

TEST(RotatedInputs, ByInputEachInputHoldsItsOwnSetsOneAfterAnother) {
  RotatedInputs in(RotatedInputs::Layout::by_input);
  const auto a = in.add("A", DType::bf16, 1000);                                       // 2000 bytes, padded to 2048
  const auto b = in.add("B", DType::fp32, 77);                                         // 308 bytes, padded to 512
  const auto c = in.add("C", DType::fp8_e4m3, 512, RotatedInputs::Fill::by_workload);  // 512, no padding
  EXPECT_EQ(in.bytes(a), 2000u);
  EXPECT_EQ(in.stride(a), 2048u);
  EXPECT_EQ(in.bytes(b), 308u);
  EXPECT_EQ(in.stride(b), 512u);
  EXPECT_EQ(in.bytes(c), 512u);
  EXPECT_EQ(in.stride(c), 512u);
  // Each in its own allocation: set s at s strides of that input.
  EXPECT_EQ(in.offset(a, 0), 0u);
  EXPECT_EQ(in.offset(a, 3), 3u * 2048);
  EXPECT_EQ(in.offset(b, 2), 2u * 512);
  EXPECT_EQ(in.offset(c, 5), 5u * 512);
  EXPECT_EQ(in.data_bytes(), 2000u + 308 + 512);
  EXPECT_EQ(in.set_bytes(), 2048u + 512 + 512);
  EXPECT_EQ(in.device_bytes(1), 3072.0);
  EXPECT_EQ(in.device_bytes(7), 7 * 3072.0);
  EXPECT_EQ(in.sets(), 0);
}

TEST(RotatedInputs, BySetEachSetHoldsEveryInputInTheOrderDeclared) {
  RotatedInputs in(RotatedInputs::Layout::by_set);
  const auto q = in.add("Q", DType::fp16, 100);                                  // 200 -> 256
  const auto l = in.add("L", DType::fp32, 3, RotatedInputs::Fill::by_workload);  // 12 -> 256
  const auto x = in.add("x", DType::bf16, 1024);                                 // 2048
  EXPECT_EQ(in.set_bytes(), 256u + 256 + 2048);
  EXPECT_EQ(in.data_bytes(), 200u + 12 + 2048);
  EXPECT_EQ(in.offset(q, 0), 0u);
  EXPECT_EQ(in.offset(l, 0), 256u);
  EXPECT_EQ(in.offset(x, 0), 512u);
  // Set s starts s set_bytes in; inside it, the same offsets.
  EXPECT_EQ(in.offset(q, 2), 2u * 2560);
  EXPECT_EQ(in.offset(l, 2), 2u * 2560 + 256);
  EXPECT_EQ(in.offset(x, 3), 3u * 2560 + 512);
  EXPECT_EQ(in.device_bytes(4), 4 * 2560.0);
  // Every offset on the boundary, in both layouts.
  for (int s = 0; s < 5; ++s) {
    for (const auto id : {q, l, x}) EXPECT_EQ(in.offset(id, s) % kDeviceAlignment, 0u);
  }
}

TEST(RotatedInputs, NoInputsTakeNoMemory) {
  const RotatedInputs in;
  EXPECT_EQ(in.set_bytes(), 0u);
  EXPECT_EQ(in.data_bytes(), 0u);
  EXPECT_EQ(in.device_bytes(9), 0.0);
}

TEST(RotatedInputs, PointersNeedAnAllocatedSet) {
  RotatedInputs in;
  const auto a = in.add("A", DType::bf16, 16);
  EXPECT_THROW((void)in.ptr(a, 0), std::logic_error);  // before allocate(), with no device
  EXPECT_THROW((void)in.bytes(RotatedInputs::Id{1}), std::logic_error);
  EXPECT_THROW((void)in.bytes(RotatedInputs::Id{}), std::logic_error);  // declared by no add()
  EXPECT_THROW(in.allocate(0), std::invalid_argument);
}

using Maker = std::function<std::unique_ptr<Workload>()>;

// input_bytes(), then device_bytes() with 1, 3 and 7 input sets, as stated before the helper.
struct Footprint {
  std::string label;
  Maker make;
  double input, sets1, sets3, sets7;
};

// The makers of each family's workload, for a row of the table.
Maker gemm(GemmImpl impl, DType t, GemmShape shape) {
  return [=] { return make_gemm_workload(impl, t, shape); };
}

Maker mlp(const char* word, DType t, long d, long ff, long tok, bool fwd = false) {
  const MlpConfig c{*mlp_variant(word), t, d, ff, tok, fwd};
  return [=] { return make_mlp_workload(c); };
}

Maker attn(AttentionImpl impl, AttentionPass pass, DType t, long b, long h, long s, long d) {
  const AttentionCase c{impl, pass, t, {b, h, s, d, false}};
  return [=] { return make_attention_workload(c); };
}

Maker moe_layer(const MoeConfig& c) {
  return [=] { return make_moe_workload(c); };
}

std::vector<Footprint> footprints() {
  using AI = AttentionImpl;
  using AP = AttentionPass;
  const auto ec = moe::Routing::expert_choice, tc = moe::Routing::token_choice;
  return {
      {"gemm cublaslt bf16 4096x8192x4096", gemm(GemmImpl::cublaslt, DType::bf16, {4096, 8192, 4096}), 100663296,
       201326592, 402653184, 805306368},
      {"gemm cublas fp32 1000x999x77", gemm(GemmImpl::cublas, DType::fp32, {1000, 999, 77}), 615692, 38166368, 39398240,
       41861984},
      {"gemm cublaslt fp8 16x48x80", gemm(GemmImpl::cublaslt, DType::fp8_e4m3, {16, 48, 80}), 5120, 33561088, 33571328,
       33591808},
      {"gemm wmma fp16 33x17x9", gemm(GemmImpl::wmma, DType::fp16, {33, 17, 9}), 900, 33556834, 33559394, 33564514},
      {"cast fp32->bf16 268435456", [] { return make_cast_workload(DType::fp32, DType::bf16, 268435456); }, 1073741824,
       1610612736, 3758096384, 8053063680},
      {"cast bf16->fp32 1000001", [] { return make_cast_workload(DType::bf16, DType::fp32, 1000001); }, 2000002,
       6000132, 10000388, 18000900},
      {"copy 777", [] { return make_copy_workload(777); }, 3108, 6436, 13092, 26404},
      {"mlp linear bf16 1600/6400/8192", mlp("linear", DType::bf16, 1600, 6400, 8192), 52428800, 430047232, 534904832,
       744620032},
      {"mlp mixed_linear fp16 100/300/37", mlp("mixed_linear", DType::fp16, 100, 300, 37), 14848, 34709056, 34738752,
       34798144},
      {"mlp fused_relu bf16 100/300/37", mlp("fused_relu", DType::bf16, 100, 300, 37), 14848, 33872176, 33901872,
       33961264},
      {"mlp fused_gelu_residual bf16 1600/6400/8192", mlp("fused_gelu_residual", DType::bf16, 1600, 6400, 8192),
       52428800, 534936832, 639794432, 849509632},
      {"mlp unfused_gelu_residual fwd bf16 100/300/37", mlp("unfused_gelu_residual", DType::bf16, 100, 300, 37, true),
       7424, 33734616, 33749464, 33779160},
      {"mlp mixed_unfused_relu_residual bf16 100/300/37", mlp("mixed_unfused_relu_residual", DType::bf16, 100, 300, 37),
       14848, 34739320, 34769016, 34828408},
      {"mlp unfused_swiglu bf16 100/300/37", mlp("unfused_swiglu", DType::bf16, 100, 300, 37), 14848, 34121872,
       34151568, 34210960},
      {"mlp fused_swiglu fwd fp16 100/300/37", mlp("fused_swiglu", DType::fp16, 100, 300, 37, true), 7424, 33815952,
       33830800, 33860496},
      {"attention unfused fwd bf16 1/3/100/40", attn(AI::unfused, AP::forward, DType::bf16, 1, 3, 100, 40), 72192,
       219136, 363520, 652288},
      {"attention unfused bwd fp16 1/3/100/40", attn(AI::unfused, AP::backward, DType::fp16, 1, 3, 100, 40), 121600,
       316672, 559872, 1046272},
      {"attention fused fwd bf16 4/16/4096/128", attn(AI::fused, AP::forward, DType::bf16, 4, 16, 4096, 128), 201326592,
       269484032, 672137216, 1477443584},
      {"attention fused bwd bf16 1/3/100/64", attn(AI::fused, AP::backward, DType::bf16, 1, 3, 100, 64), 193280, 386560,
       773120, 1546240},
      {"attention cudnn fwd bf16 1/3/100/64", attn(AI::cudnn, AP::forward, DType::bf16, 1, 3, 100, 64), 115200, 154880,
       385280, 846080},
      {"attention cudnn bwd fp16 2/2/1000/128", attn(AI::cudnn, AP::backward, DType::fp16, 2, 2, 1000, 128), 5136128,
       10272256, 20544512, 41089024},
      {"moe grouped ec 2048/64/8/32768", moe_layer({2048, 64, 8, 32768, ec, MoeGemmImpl::grouped}), 4565499904,
       14179184656, 23310331920, 41572626448},
      {"moe ours tc 72/4/2/600", moe_layer({72, 4, 2, 600, tc, MoeGemmImpl::ours}), 506112, 103332552, 104347080,
       106376136},
      {"moe padded ec 64/4/1/512", moe_layer({64, 4, 1, 512, ec, MoeGemmImpl::padded}), 393728, 102479472, 103268080,
       104845296},
  };
}

// Shapes with and without padding (sizes that are not multiples of 256 bytes), every family and
// the variants whose buffers differ (mixed precision, ReLU bitmask, gated, forward only, backward).
TEST(WorkloadFootprint, InputAndDeviceBytesAreUnchanged) {
  for (const Footprint& f : footprints()) {
    SCOPED_TRACE(f.label);
    const auto w = f.make();
    EXPECT_EQ(w->input_bytes(), f.input);
    EXPECT_EQ(w->device_bytes(1), f.sets1);
    EXPECT_EQ(w->device_bytes(3), f.sets3);
    EXPECT_EQ(w->device_bytes(7), f.sets7);
  }
}

}  // namespace
}  // namespace wflops
