#include "model/peaks.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "errors.hpp"

namespace wflops {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// One datasheet row. fp64 is the fp64 tensor-core figure where the GPU has one (what DGEMM uses).
Peaks row(std::string slug, std::string model, int sms, double clock_mhz, double fp64, double fp32, double tf32,
          double fp16, std::optional<double> fp8, double int8, double tbps, std::string note = "") {
  Peaks p;
  p.slug = std::move(slug);
  p.model = std::move(model);
  p.sm_count = sms;
  p.peak_clock_mhz = clock_mhz;
  p.tflops[DType::fp64] = fp64;
  p.tflops[DType::fp32] = fp32;
  p.tflops[DType::tf32] = tf32;
  p.tflops[DType::fp16] = fp16;
  p.tflops[DType::bf16] = fp16;
  if (fp8) p.tflops[DType::fp8_e4m3] = *fp8;
  p.tflops[DType::int8] = int8;
  p.gbps = tbps * 1000.0;
  p.source = "table";
  p.note = std::move(note);
  return p;
}

}  // namespace

std::optional<double> Peaks::peak(DType t) const {
  auto it = tflops.find(t);
  if (it == tflops.end()) return std::nullopt;
  return it->second;
}

const std::vector<DType>& peak_dtypes() {
  static const std::vector<DType> order = {DType::fp64, DType::fp32,     DType::tf32, DType::fp16,
                                           DType::bf16, DType::fp8_e4m3, DType::int8};
  return order;
}

// The clock column is the SM clock the datasheet's dense 16-bit tensor figure implies:
// peak / (SMs x dense FLOP per clock per SM). Per SM and clock, dense: A100 1024 FMA = 2048 FLOP
// (NVIDIA A100 Tensor Core GPU Architecture whitepaper: 312 TFLOPS = 108 SMs x 1410 MHz x 2048);
// Hopper twice that clock for clock, 4096 (NVIDIA H100 Tensor Core GPU Architecture whitepaper);
// Ada 1024 (NVIDIA Ada GPU Architecture whitepaper); Blackwell data-centre parts 8192, twice
// Hopper, as derive_peaks() assumes. Hence A100 1410 MHz (its boost clock); H100 SXM5, H200 and
// GH200 1830 (989 / (132 x 4096); nvidia-smi shows a 1980 MHz boost); H100 PCIe 1620
// (756 / (114 x 4096)); H100 NVL 1545 (835 / (132 x 4096)); L40S 2490 (362 / (142 x 1024), boost
// 2520); L4 2040 (121 / (58 x 1024), its boost clock); B200 1856 (2250 / (148 x 8192)).
const std::vector<Peaks>& peak_table() {
  static const std::vector<Peaks> table = {
      row("a100-sxm4-40gb", "A100 SXM4 40GB", 108, 1410, 19.5, 19.5, 156, 312, std::nullopt, 624, 1.555),
      row("a100-sxm4-80gb", "A100 SXM4 80GB", 108, 1410, 19.5, 19.5, 156, 312, std::nullopt, 624, 2.039),
      row("a100-pcie-40gb", "A100 PCIe 40GB", 108, 1410, 19.5, 19.5, 156, 312, std::nullopt, 624, 1.555),
      row("a100-pcie-80gb", "A100 PCIe 80GB", 108, 1410, 19.5, 19.5, 156, 312, std::nullopt, 624, 1.935),
      row("h100-sxm", "H100 SXM5", 132, 1830, 67, 67, 495, 989, 1979, 1979, 3.35,
          "datasheet tensor figures assume a ~1830 MHz tensor clock, below the 1980 MHz boost"),
      row("h100-pcie", "H100 PCIe", 114, 1620, 51, 51, 378, 756, 1513, 1513, 2.0,
          "secondary source; check against the vendor datasheet"),
      row("h100-nvl", "H100 NVL", 132, 1545, 60, 60, 418, 835, 1671, 1671, 3.9,
          "secondary source; check against the vendor datasheet"),
      row("h200", "H200 SXM", 132, 1830, 67, 67, 495, 989, 1979, 1979, 4.8),
      // The Grace Hopper superchip's GPU: H100 SXM5 compute (NVIDIA GH200 datasheet) with its own
      // memory, 96 GB HBM3 at 4.0 TB/s or 144 GB HBM3e at 4.9 TB/s.
      row("gh200-96gb", "GH200 96GB HBM3", 132, 1830, 67, 67, 495, 989, 1979, 1979, 4.0),
      row("gh200-144gb", "GH200 144GB HBM3e", 132, 1830, 67, 67, 495, 989, 1979, 1979, 4.9),
      row("l40s", "L40S", 142, 2490, 1.41, 91.6, 183, 362, 733, 733, 0.864,
          "no fp64 tensor cores: fp64 is 1/64 of fp32"),
      row("l4", "L4", 58, 2040, 0.49, 30.3, 60, 121, 242.5, 242.5, 0.30,
          "secondary source; no fp64 tensor cores: fp64 is 1/64 of fp32"),
      row("b200", "B200", 148, 1856, 40, 75, 1100, 2250, 4500, 4500, 8.0,
          "fp32 and memory bandwidth are approximate (~75 TFLOP/s, ~8 TB/s)"),
  };
  return table;
}

std::optional<Peaks> peaks_by_slug(std::string_view slug) {
  for (const Peaks& p : peak_table()) {
    if (p.slug == slug) return p;
  }
  return std::nullopt;
}

namespace {

// The table slug a device name stands for, or "" when it is not in the table.
std::string table_slug(std::string_view device_name, double mem_gib) {
  const std::string n = lower(device_name);
  // Before "h200", which "gh200" contains. "NVIDIA GH200 480GB" (480 GB is the Grace CPU's
  // LPDDR5X) has 96 GB of HBM3; "NVIDIA GH200 144G HBM3e" 144 GB.
  if (contains(n, "gh200")) {
    const bool big = contains(n, "hbm3e") || contains(n, "144g") || mem_gib > 120;
    return big ? "gh200-144gb" : "gh200-96gb";
  }
  if (contains(n, "a100")) {
    // "NVIDIA A100-SXM4-80GB", "NVIDIA A100-PCIE-40GB", "NVIDIA A100 80GB PCIe"
    const bool big = contains(n, "80gb") || (!contains(n, "40gb") && mem_gib > 60);
    const bool pcie = contains(n, "pcie");
    return fmt::format("a100-{}-{}", pcie ? "pcie" : "sxm4", big ? "80gb" : "40gb");
  }
  if (contains(n, "h100")) {
    // "NVIDIA H100 80GB HBM3" is the SXM5 part; "NVIDIA H100 PCIe"; "NVIDIA H100 NVL"
    if (contains(n, "nvl")) return "h100-nvl";
    if (contains(n, "pcie")) return "h100-pcie";
    return "h100-sxm";
  }
  if (contains(n, "h200")) {
    // The H200 NVL has other figures and is not in the table: it gets derived peaks.
    return contains(n, "nvl") ? "" : "h200";
  }
  if (contains(n, "l40s")) return "l40s";
  if (n == "nvidia l4" || n == "l4") return "l4";
  if (contains(n, "b200")) return "b200";
  return "";
}

}  // namespace

std::optional<Peaks> peaks_by_device_name(std::string_view device_name, double mem_gib) {
  const std::string slug = table_slug(device_name, mem_gib);
  if (slug.empty()) return std::nullopt;
  return peaks_by_slug(slug);
}

std::string gpu_slug(std::string_view device_name, double mem_gib) {
  std::string slug = table_slug(device_name, mem_gib);
  if (!slug.empty()) return slug;
  std::string n = lower(device_name);
  if (n.rfind("nvidia ", 0) == 0) n = n.substr(7);
  for (char c : n) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      slug += c;
    } else if (!slug.empty() && slug.back() != '-') {
      slug += '-';
    }
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return slug.empty() ? "unknown-gpu" : slug;
}

Peaks derive_peaks(const DeviceDescription& dev) {
  // Dense FLOP per clock per SM (docs/conventions.md): 16-bit tensor A100 2048, H100 4096, Ada 1024;
  // fp32 A100 128, H100 256, Ada 256. Blackwell data-centre parts double Hopper's tensor rate.
  double tensor16 = 0, fp32 = 0;
  bool has_fp8 = false, fp64_tensor = false;
  const int cc = dev.cc_major * 10 + dev.cc_minor;
  if (cc >= 100 && cc < 110) {
    tensor16 = 8192;
    fp32 = 256;
    has_fp8 = true;
    fp64_tensor = true;
  } else if (cc >= 90) {
    tensor16 = (cc == 90) ? 4096 : 1024;
    fp32 = 256;
    has_fp8 = true;
    fp64_tensor = (cc == 90);
  } else if (cc == 89) {
    tensor16 = 1024;
    fp32 = 256;
    has_fp8 = true;
  } else if (cc == 80) {
    tensor16 = 2048;
    fp32 = 128;
    fp64_tensor = true;
  } else {
    tensor16 = 1024;
    fp32 = 256;
  }
  const double clock_ghz = dev.sm_clock_max_mhz / 1000.0;
  const double per_sm_to_tflops = dev.sm_count * clock_ghz / 1000.0;  // x FLOP/clk/SM -> TFLOP/s
  Peaks p;
  p.slug = gpu_slug(dev.name, dev.mem_gib());
  p.model = dev.name;
  p.sm_count = dev.sm_count;
  p.peak_clock_mhz = dev.sm_clock_max_mhz;  // what the figures below assume
  p.tflops[DType::fp32] = fp32 * per_sm_to_tflops;
  p.tflops[DType::fp64] = fp64_tensor ? fp32 * per_sm_to_tflops : fp32 * per_sm_to_tflops / 64.0;
  p.tflops[DType::tf32] = tensor16 / 2 * per_sm_to_tflops;
  p.tflops[DType::fp16] = tensor16 * per_sm_to_tflops;
  p.tflops[DType::bf16] = tensor16 * per_sm_to_tflops;
  if (has_fp8) p.tflops[DType::fp8_e4m3] = 2 * tensor16 * per_sm_to_tflops;
  p.tflops[DType::int8] = 2 * tensor16 * per_sm_to_tflops;
  // Memory clock in MHz, bus in bits, two transfers per clock: MB/s -> GB/s.
  p.gbps = dev.mem_clock_max_mhz * 2.0 * dev.mem_bus_width_bits / 8.0 / 1000.0;
  p.source = "derived";
  p.note = fmt::format(
      "not in the datasheet table: derived from {} SMs x {} MHz x FLOP/clock/SM of compute "
      "capability {}; boost clocks overstate sustained tensor throughput",
      dev.sm_count, dev.sm_clock_max_mhz, dev.cc());
  return p;
}

Peaks peaks_for_device(const DeviceDescription& dev) {
  if (auto p = peaks_by_device_name(dev.name, dev.mem_gib())) return *p;
  return derive_peaks(dev);
}

void apply_peak_overrides(Peaks& peaks, const std::vector<std::string>& overrides) {
  for (const std::string& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos) {
      throw UserError(fmt::format("--peak '{}': expected DTYPE=TFLOPS or gbps=GBPS", o));
    }
    const std::string key = o.substr(0, eq);
    const std::string value = o.substr(eq + 1);
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !(v > 0) || !std::isfinite(v)) {
      throw UserError(fmt::format("--peak '{}': '{}' is not a positive number", o, value));
    }
    if (key == "gbps") {
      peaks.gbps = v;
    } else if (auto t = parse_dtype(key)) {
      peaks.tflops[*t] = v;
      // fp16 and bf16 share one tensor-core peak unless both are given.
      if (*t == DType::fp16 || *t == DType::bf16) {
        const DType other = (*t == DType::fp16) ? DType::bf16 : DType::fp16;
        const bool other_given = std::any_of(overrides.begin(), overrides.end(), [&](const std::string& s) {
          return s.rfind(std::string(dtype_name(other)) + "=", 0) == 0;
        });
        if (!other_given) peaks.tflops[other] = v;
      }
    } else {
      throw UserError(
          fmt::format("--peak '{}': unknown key '{}' (use fp64, fp32, tf32, fp16, bf16, fp8, int8 or gbps)", o, key));
    }
    peaks.source = "override";
  }
}

}  // namespace wflops
