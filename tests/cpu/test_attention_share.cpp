// `wflops attention-share` on a hand-made result file (tests/data/attention_h100.json: best bf16
// matmul 700 TFLOP/s; fused attention d=128 s=4096 forward 350 / backward 280, causal 250 / 200).
#include <gtest/gtest.h>

#include <string>

#include "program_run.hpp"

namespace {

using wflops::testing::run_wflops;

const std::string kFile = WFLOPS_SOURCE_DIR "/tests/data/attention_h100.json";

TEST(CliAttentionShare, HandCheckedFractions) {
  // H = 2048, s = 4096: FLOP share 14s / (14s + 72H) = 28%. Time: weights 9F/700 = 72F/5600,
  // attention F/350 + 2.5F/280 = 66F/5600 -> 66/138 = 47.83%.
  const auto r = run_wflops("attention-share --results " + kFile + " --hidden 2048 --seq 4096");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("16 heads of 128"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("step FLOPs: 28.00%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("step time:  47.83%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("m:8192/n:8192/k:8192"), std::string::npos) << r.out;  // the best matmul, 700
}

TEST(CliAttentionShare, Causal) {
  // FLOP share 7/43 = 16.28%. Time: attention F/2 (1/250 + 2.5/200) = 33F/4000 against 9F/700:
  // 231 / (231 + 360) = 39.09%.
  const auto r = run_wflops("attention-share --results " + kFile + " --hidden 2048 --seq 4096 --causal");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("step FLOPs: 16.28%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("step time:  39.09%"), std::string::npos) << r.out;
}

TEST(CliAttentionShare, MissingBenchmarksAreClearErrors) {
  // 32 heads of 64 were not measured in the file.
  const auto r = run_wflops("attention-share --results " + kFile + " --hidden 2048 --seq 4096 --heads 32");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("no measured attention_fwd/fused/bf16 benchmark with s:4096/d:64/causal:0"), std::string::npos)
      << r.out;
  EXPECT_EQ(run_wflops("attention-share --results " + kFile + " --hidden 2048 --seq 4096 --heads 3").code, 1);
  EXPECT_EQ(run_wflops("attention-share --results /nonexistent.json --hidden 2048 --seq 4096").code, 1);
}

}  // namespace
