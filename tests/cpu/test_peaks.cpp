// Peak lookup by device name, derived peaks for unknown GPUs, overrides.
#include <gtest/gtest.h>

#include <map>

#include "errors.hpp"
#include "model/peaks.hpp"

namespace wflops {

TEST(Peaks, RecognisesDeviceNames) {
  EXPECT_EQ(gpu_slug("NVIDIA H100 80GB HBM3", 79.1), "h100-sxm");
  EXPECT_EQ(gpu_slug("NVIDIA H100 PCIe", 79.1), "h100-pcie");
  EXPECT_EQ(gpu_slug("NVIDIA H100 NVL", 93.0), "h100-nvl");
  EXPECT_EQ(gpu_slug("NVIDIA H200", 139.8), "h200");
  EXPECT_EQ(gpu_slug("NVIDIA A100-SXM4-80GB", 79.1), "a100-sxm4-80gb");
  EXPECT_EQ(gpu_slug("NVIDIA A100-SXM4-40GB", 39.4), "a100-sxm4-40gb");
  EXPECT_EQ(gpu_slug("NVIDIA A100-PCIE-40GB", 39.4), "a100-pcie-40gb");
  EXPECT_EQ(gpu_slug("NVIDIA A100 80GB PCIe", 79.1), "a100-pcie-80gb");
  EXPECT_EQ(gpu_slug("NVIDIA L40S", 44.5), "l40s");
  EXPECT_EQ(gpu_slug("NVIDIA L4", 22.0), "l4");
  EXPECT_EQ(gpu_slug("NVIDIA B200", 179.0), "b200");
}

TEST(Peaks, ReferenceValues) {
  const auto h100 = peaks_by_device_name("NVIDIA H100 80GB HBM3", 79.1);
  ASSERT_TRUE(h100);
  EXPECT_DOUBLE_EQ(*h100->peak(DType::bf16), 989);
  EXPECT_DOUBLE_EQ(*h100->peak(DType::fp16), 989);
  EXPECT_DOUBLE_EQ(*h100->peak(DType::fp8_e4m3), 1979);
  EXPECT_DOUBLE_EQ(*h100->peak(DType::tf32), 495);
  EXPECT_DOUBLE_EQ(*h100->peak(DType::fp32), 67);
  EXPECT_DOUBLE_EQ(h100->gbps, 3350);
  EXPECT_EQ(h100->source, "table");
  const auto a100 = peaks_by_device_name("NVIDIA A100-SXM4-80GB", 79.1);
  ASSERT_TRUE(a100);
  EXPECT_DOUBLE_EQ(*a100->peak(DType::bf16), 312);
  EXPECT_DOUBLE_EQ(*a100->peak(DType::tf32), 156);
  EXPECT_DOUBLE_EQ(*a100->peak(DType::fp32), 19.5);
  EXPECT_FALSE(a100->peak(DType::fp8_e4m3)) << "A100 has no fp8 tensor cores";
  EXPECT_DOUBLE_EQ(a100->gbps, 2039);
  EXPECT_DOUBLE_EQ(peaks_by_slug("a100-sxm4-40gb")->gbps, 1555);
  EXPECT_DOUBLE_EQ(peaks_by_slug("h200")->gbps, 4800);
}

TEST(Peaks, Gh200IsNotTakenForAnH200) {
  // "gh200" contains "h200": the superchip must not get the H200's 4.8 TB/s.
  EXPECT_EQ(gpu_slug("NVIDIA GH200 480GB", 94.5), "gh200-96gb");
  EXPECT_EQ(gpu_slug("NVIDIA GH200 144G HBM3e", 143.4), "gh200-144gb");
  EXPECT_EQ(gpu_slug("NVIDIA GH200 144GB HBM3e", 143.4), "gh200-144gb");
  EXPECT_EQ(gpu_slug("NVIDIA GH200", 94.5), "gh200-96gb");
  EXPECT_EQ(gpu_slug("NVIDIA GH200", 143.4), "gh200-144gb") << "no size in the name: the memory tells";
  const auto small = peaks_by_device_name("NVIDIA GH200 480GB", 94.5);
  ASSERT_TRUE(small);
  EXPECT_DOUBLE_EQ(small->gbps, 4000);
  EXPECT_DOUBLE_EQ(*small->peak(DType::bf16), 989);
  EXPECT_DOUBLE_EQ(small->peak_clock_mhz, 1830);
  EXPECT_DOUBLE_EQ(peaks_by_device_name("NVIDIA GH200 144G HBM3e", 143.4)->gbps, 4900);
  // The H200 itself is unchanged.
  EXPECT_EQ(gpu_slug("NVIDIA H200", 139.8), "h200");
  EXPECT_DOUBLE_EQ(peaks_by_device_name("NVIDIA H200", 139.8)->gbps, 4800);
}

TEST(Peaks, TheClockEachPeakAssumes) {
  EXPECT_DOUBLE_EQ(peaks_by_slug("h100-sxm")->peak_clock_mhz, 1830) << "not the 1980 MHz boost";
  EXPECT_DOUBLE_EQ(peaks_by_slug("h200")->peak_clock_mhz, 1830);
  EXPECT_DOUBLE_EQ(peaks_by_slug("a100-sxm4-80gb")->peak_clock_mhz, 1410);
  // Every row: SMs x clock x dense 16-bit tensor FLOP/clock/SM gives back the bf16 peak within
  // 0.5% (the datasheets round). FLOP/clock/SM: A100 2048, Hopper 4096, Ada 1024, B200 8192.
  const std::map<std::string, double> per_sm = {{"a100-sxm4-40gb", 2048},
                                                {"a100-sxm4-80gb", 2048},
                                                {"a100-pcie-40gb", 2048},
                                                {"a100-pcie-80gb", 2048},
                                                {"h100-sxm", 4096},
                                                {"h100-pcie", 4096},
                                                {"h100-nvl", 4096},
                                                {"h200", 4096},
                                                {"gh200-96gb", 4096},
                                                {"gh200-144gb", 4096},
                                                {"l40s", 1024},
                                                {"l4", 1024},
                                                {"b200", 8192}};
  for (const Peaks& p : peak_table()) {
    ASSERT_TRUE(per_sm.count(p.slug)) << p.slug << ": add its FLOP/clock/SM here";
    const double tflops = p.sm_count * p.peak_clock_mhz * 1e6 * per_sm.at(p.slug) / 1e12;
    EXPECT_NEAR(tflops / *p.peak(DType::bf16), 1.0, 0.005) << p.slug << ": " << tflops;
  }
}

TEST(Peaks, EveryTableRowHasTheIssueDtypes) {
  EXPECT_GE(peak_table().size(), 13u);
  for (const Peaks& p : peak_table()) {
    for (DType t : {DType::fp64, DType::fp32, DType::tf32, DType::fp16, DType::bf16, DType::int8}) {
      ASSERT_TRUE(p.peak(t)) << p.slug << " lacks " << dtype_name(t);
      EXPECT_GT(*p.peak(t), 0) << p.slug;
    }
    EXPECT_GT(p.gbps, 0) << p.slug;
    EXPECT_GT(p.sm_count, 0) << p.slug;
  }
}

TEST(Peaks, UnknownGpuIsDerivedFromClocks) {
  DeviceDescription d;
  d.name = "NVIDIA Future GPU X";
  d.sm_count = 132, d.cc_major = 9, d.cc_minor = 0, d.sm_clock_max_mhz = 1830;
  d.mem_clock_max_mhz = 2619, d.mem_bus_width_bits = 5120, d.mem_bytes = 80.0 * (1ull << 30);
  EXPECT_FALSE(peaks_by_device_name(d.name, d.mem_gib()));
  const Peaks p = peaks_for_device(d);
  EXPECT_EQ(p.source, "derived");
  EXPECT_EQ(p.slug, "future-gpu-x");
  // 132 SMs x 1.830 GHz x 4096 FLOP/clock = 989.4 TFLOP/s: the H100 datasheet figure
  EXPECT_NEAR(*p.peak(DType::bf16), 989.4, 0.1);
  EXPECT_NEAR(*p.peak(DType::tf32), 494.7, 0.1);
  EXPECT_NEAR(*p.peak(DType::fp8_e4m3), 1978.8, 0.2);
  // 132 x 1.830 x 256 = 61.8
  EXPECT_NEAR(*p.peak(DType::fp32), 61.8, 0.1);
  // 2619 MHz x 2 x 5120 bit / 8 = 3352 GB/s
  EXPECT_NEAR(p.gbps, 3352.3, 0.1);
  EXPECT_NE(p.note.find("derived"), std::string::npos);
  EXPECT_DOUBLE_EQ(p.peak_clock_mhz, 1830) << "derived peaks assume the max SM clock";

  d.cc_minor = 0;
  d.cc_major = 8;
  d.sm_count = 108;
  d.sm_clock_max_mhz = 1410;
  const Peaks a = derive_peaks(d);
  EXPECT_NEAR(*a.peak(DType::bf16), 311.9, 0.1);   // 108 x 1.41 x 2048
  EXPECT_NEAR(*a.peak(DType::fp32), 19.49, 0.01);  // 108 x 1.41 x 128
  EXPECT_FALSE(a.peak(DType::fp8_e4m3));
}

TEST(Peaks, Overrides) {
  Peaks p = *peaks_by_slug("h100-sxm");
  apply_peak_overrides(p, {"bf16=900", "gbps=3000"});
  EXPECT_DOUBLE_EQ(*p.peak(DType::bf16), 900);
  EXPECT_DOUBLE_EQ(*p.peak(DType::fp16), 900) << "fp16 follows bf16 unless given";
  EXPECT_DOUBLE_EQ(p.gbps, 3000);
  EXPECT_EQ(p.source, "override");
  apply_peak_overrides(p, {"fp16=700", "bf16=800"});
  EXPECT_DOUBLE_EQ(*p.peak(DType::fp16), 700);
  EXPECT_DOUBLE_EQ(*p.peak(DType::bf16), 800);
  EXPECT_THROW(apply_peak_overrides(p, {"bf16"}), UserError);
  EXPECT_THROW(apply_peak_overrides(p, {"bf16=fast"}), UserError);
  EXPECT_THROW(apply_peak_overrides(p, {"bf16=-1"}), UserError);
  EXPECT_THROW(apply_peak_overrides(p, {"fp4=1"}), UserError);
}

}  // namespace wflops
