// Datasheet peaks: dense (not 2:4 sparse) tensor/vector TFLOP/s per dtype and memory bandwidth,
// recognised from the device name, or derived from SMs x clock x FLOP/clock/SM for a GPU that is
// not in the table. Values from docs/conventions.md (vendor datasheets, sparsity halved).
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "device_description.hpp"
#include "dtype.hpp"

namespace wflops {

struct Peaks {
  std::string slug;   // "h100-sxm", "a100-sxm4-80gb", ...
  std::string model;  // "H100 SXM5"
  int sm_count = 0;   // the SM count the datasheet figures assume
  // The SM clock the tensor peaks assume, MHz: peak / (SMs x dense FLOP/clock/SM). Often below
  // the boost clock nvidia-smi shows (H100 SXM: ~1830 against 1980). 0: unknown. The clock
  // ratio of a result (clock_assessment.hpp) is its measured SM clock over this one.
  double peak_clock_mhz = 0;
  std::map<DType, double> tflops;  // dtype -> dense peak TFLOP/s (TOPS for int8); absent: unsupported
  double gbps = 0;                 // memory bandwidth, GB/s
  std::string source;              // "table", "derived" or "override"
  std::string note;                // why a figure is approximate, how it was derived

  std::optional<double> peak(DType t) const;  // tf32 etc.; nullopt when the GPU lacks the dtype
};

// Every GPU of the datasheet table, for `wflops peaks` and `wflops list --gpu`.
const std::vector<Peaks>& peak_table();
std::optional<Peaks> peaks_by_slug(std::string_view slug);

// The table row that a CUDA device name (and memory size, to tell 40 GB from 80 GB) names.
std::optional<Peaks> peaks_by_device_name(std::string_view device_name, double mem_gib);

// Lower-case slug for a device: the table's slug when known, else the name made file-safe
// ("NVIDIA GeForce RTX 4090" -> "geforce-rtx-4090").
std::string gpu_slug(std::string_view device_name, double mem_gib);

// Peaks of a GPU not in the table: SMs x max SM clock x dense FLOP/clock/SM of its architecture
// (compute capability), bandwidth from memory clock x bus width x 2 (double data rate). The clock
// these peaks assume (peak_clock_mhz) is then the max SM clock.
Peaks derive_peaks(const DeviceDescription& dev);

// The table row when the name is known, otherwise derived.
Peaks peaks_for_device(const DeviceDescription& dev);

// Applies "--peak DTYPE=TFLOPS" / "--peak gbps=GBPS" overrides; throws UserError on bad input.
void apply_peak_overrides(Peaks& peaks, const std::vector<std::string>& overrides);

// The dtypes a peak table row lists, in display order.
const std::vector<DType>& peak_dtypes();

}  // namespace wflops
