// The model step's verification before timing (model_step_impl.hpp, verify_step), the same for
// GPT-2 and Llama. At the timed
// shape there is no fp64 reference to run (tests/gpu/test_model_step.cpp compares every gradient
// with it at a small shape), so the check is what can be known there:
//  - the loss at GPT-2's initialisation: the final LayerNorm's rows have mean 0 and variance 1
//    (Llama's final RMSNorm: mean square 1, which is what counts here), so each logit z · wte_j
//    (Llama: z · head_j) is a sum of d products with entries of variance 0.02², about
//    normal with variance σ² = 0.02² d; the log-sum-exp over V such logits is ln V + σ²/2 (the
//    mean of e^x over V = 50257 samples is within 0.5% of E e^x = e^{σ²/2}) and the target's logit
//    averages 0 over the T tokens (± σ/√T, 0.01 at the reference shape). So the mean loss must be
//    within kLossTolerance of ln V + σ²/2 (10.83 + 0.32 at d = 1600, V = 50257). 0.25 nats allows
//    for the logits being only nearly normal and the blocks' small correlations; a step that does
//    not compute a softmax over V logits (a wrong vocabulary, a missing normalisation) misses it;
//  - every gradient element finite (the gradients were poisoned with NaN first);
//  - the other implementation (eager for fused, fused for eager) on the same weights and tokens
//    (it reads this step's masters and compute copy rather than a copy of them: memory for a
//    second set of Llama-3-8B-sized parameters is not there at b = 2):
//    the losses within the dtype's tolerance, and sampled gradient entries of each kind of tensor
//    (all layers' w_qkv together, ...) within twice it: each step is an approximation of the
//    exact gradient within the dtype's tolerance, so two of them differ by up to twice that;
//  - after AdamW, every master weight finite.
// All of it before the optimizer has changed the weights the gradients belong to.
#include <fmt/core.h>

#include <cmath>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "common/count_nonfinite.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/model_step_impl.hpp"
#include "reference/verify_error.hpp"

namespace wflops::model_step_detail {

namespace {

constexpr double kLossTolerance = 0.25;  // nats, see above
constexpr int kSamplesPerTensor = 32;

// NaN or Inf elements in each of `arrays` (fp32 pointers and counts), read back.
std::vector<unsigned long long> nonfinite_counts(const std::vector<std::pair<const float*, std::size_t>>& arrays,
                                                 cudaStream_t stream) {
  DeviceBuffer counts(arrays.size() * sizeof(unsigned long long));
  CUDA_CHECK(cudaMemsetAsync(counts.get(), 0, counts.bytes(), stream));
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    CUDA_CHECK(kernels::count_nonfinite(DType::fp32, arrays[i].first, arrays[i].second,
                                        counts.as<unsigned long long>() + i, stream));
  }
  std::vector<unsigned long long> host(arrays.size());
  CUDA_CHECK(cudaMemcpyAsync(host.data(), counts.get(), counts.bytes(), cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return host;
}

// The kind of a tensor: its name without the block prefix ("h3.w_qkv" -> "w_qkv").
std::string kind_of(const std::string& name) {
  const std::size_t dot = name.find('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

float read_float(const float* device) {
  float x = 0;
  CUDA_CHECK(cudaMemcpy(&x, device, sizeof x, cudaMemcpyDeviceToHost));
  return x;
}

}  // namespace

void upload_random_ids(std::uint64_t seed, long vocab, std::size_t count, int* device, cudaStream_t stream) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> pick(0, static_cast<int>(vocab) - 1);
  std::vector<int> ids(count);
  for (int& id : ids) id = pick(rng);
  // On the step's stream and waited for: a plain cudaMemcpy from pageable memory may return before
  // its DMA lands, and a non-blocking stream would not wait for it.
  CUDA_CHECK(cudaMemcpyAsync(device, ids.data(), count * sizeof(int), cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

Verification verify_step(StepBase& step, const ModelStepConfig& c, int* tokens, int* targets, cudaStream_t stream) {
  const StepLayout& lay = step.shape();
  const std::size_t T = static_cast<std::size_t>(lay.T);
  Verification result;
  result.tolerance = 2 * dtype_tolerance(c.dtype);
  auto fail = [&](std::string why) {
    result.ok = false;
    result.detail = std::move(why);
    return result;
  };

  step.init_parameters(fresh_seed(), kInitStd, stream);
  CUDA_CHECK(cudaStreamSynchronize(stream));
  upload_random_ids(fresh_seed(), lay.V, T, tokens, stream);
  upload_random_ids(fresh_seed(), lay.V, T, targets, stream);
  PhaseMarks none;
  step.poison(stream);
  step.forward_backward(tokens, targets, stream, none);
  const double loss = step.read_loss(stream);
  const double sigma2 = static_cast<double>(kInitStd) * kInitStd * static_cast<double>(lay.d);
  const double expected = std::log(static_cast<double>(lay.V)) + sigma2 / 2;
  if (!std::isfinite(loss) || std::fabs(loss - expected) > kLossTolerance) {
    return fail(fmt::format("the loss at initialisation is {:.4f}, not within {} of ln V + 0.02^2 d / 2 = {:.4f}", loss,
                            kLossTolerance, expected));
  }

  std::vector<std::pair<const float*, std::size_t>> grads;
  for (const TensorSlot& t : lay.tensors) grads.emplace_back(step.grads() + t.offset, t.count);
  const std::vector<unsigned long long> bad = nonfinite_counts(grads, stream);
  std::string nonfinite;
  for (std::size_t i = 0; i < bad.size(); ++i) {
    if (bad[i]) {
      nonfinite += fmt::format("{}{}: {} of {}", nonfinite.empty() ? "" : ", ", lay.tensors[i].name, bad[i],
                               lay.tensors[i].count);
    }
  }
  if (!nonfinite.empty()) return fail("gradients not finite (NaN or Inf): " + nonfinite);

  // The other implementation on the same weights and tokens.
  const std::unique_ptr<StepBase> peer_step = make_step(c, step.impl() == Impl::eager ? Impl::fused : Impl::eager);
  StepBase& peer = *peer_step;
  peer.allocate(stream, &step);  // on this step's masters and compute copy
  peer.poison(stream);
  peer.forward_backward(tokens, targets, stream, none);
  const double peer_loss = peer.read_loss(stream);
  const char* peer_name = peer.impl() == Impl::eager ? "eager" : "fused";

  ErrorReport report;
  report.add("loss", ErrorSum({loss}, {peer_loss}), dtype_tolerance(c.dtype));
  std::map<std::string, ErrorSum> by_kind;
  std::vector<std::string> order;
  std::mt19937_64 rng(fresh_seed());
  for (const TensorSlot& t : lay.tensors) {
    const std::string kind = kind_of(t.name);
    if (!by_kind.count(kind)) order.push_back(kind);
    std::set<std::size_t> picked = {0, t.count - 1};
    std::uniform_int_distribution<std::size_t> pick(0, t.count - 1);
    while (picked.size() < std::min<std::size_t>(t.count, kSamplesPerTensor + 2)) picked.insert(pick(rng));
    for (std::size_t i : picked) {
      by_kind[kind].add(read_float(step.grads() + t.offset + i), read_float(peer.grads() + t.offset + i));
    }
  }
  for (const std::string& kind : order) report.add("d" + kind, by_kind[kind], result.tolerance);
  if (!report.ok()) {
    Verification v;
    v.ok = false;
    v.rel_err = report.worst();
    v.tolerance = result.tolerance;
    v.detail =
        report.detail(fmt::format("loss {:.4f}; against the {} step on the same weights and tokens (its loss "
                                  "{:.4f}), sampled gradients",
                                  loss, peer_name, peer_loss));
    return v;
  }

  step.optimizer(stream, none);
  const std::vector<unsigned long long> bad_master = nonfinite_counts({{step.master(), lay.total}}, stream);
  if (bad_master[0]) return fail(fmt::format("after AdamW {} master weights are NaN or Inf", bad_master[0]));

  result.ok = true;
  result.rel_err = report.worst();
  result.detail =
      report.detail(fmt::format("loss {:.4f} at initialisation (expected {:.4f} ± {}); all gradients "
                                "finite; against the {} step on the same weights and tokens, {} "
                                "sampled gradients per tensor; masters finite after AdamW",
                                loss, expected, kLossTolerance, peer_name, kSamplesPerTensor));
  return result;
}

}  // namespace wflops::model_step_detail
