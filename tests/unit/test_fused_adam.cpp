// FusedAdam against torch::optim::Adam: same trajectory to float rounding, same state.
#include <catch2/catch.hpp>

#include <sstream>
#include <type_traits>

#include "attnrec/train/fused_adam.hpp"
#include "attnrec/util/torch_compat.hpp"
#include "model_support.hpp"

using namespace attnrec;
using namespace attnrec::test;

namespace {

/// Parameters of awkward sizes (not multiples of the vector width; one larger than the
/// parallel grain so that it is split across threads) and a float64 one, which FusedAdam
/// hands to torch::optim::Adam.
std::vector<torch::Tensor> make_params() {
  torch::manual_seed(3);
  return {torch::randn({7, 3}).requires_grad_(true), torch::randn({70001}).requires_grad_(true),
          torch::randn({5}, torch::kFloat64).requires_grad_(true)};
}

torch::Tensor loss_of(const std::vector<torch::Tensor>& p, int step) {
  // A different, non-trivial gradient every step (including sign changes).
  const double s = 1.0 + 0.1 * step;
  return (p[0] * s).sin().sum() + (p[1].pow(2) * s).sum() * 1e-3 +
         (p[2] * p[2] * s).sum().to(torch::kFloat32);
}

template <class Optimizer>
std::vector<torch::Tensor> run(torch::optim::AdamOptions options, int steps,
                               Optimizer** out = nullptr) {
  auto params = make_params();
  static std::unique_ptr<Optimizer> keep;
  keep = std::make_unique<Optimizer>(params, options);
  for (int step = 0; step < steps; ++step) {
    keep->zero_grad();
    loss_of(params, step).backward();
    keep->step();
  }
  if (out) *out = keep.get();
  return params;
}

/// FusedAdam with the multi-tensor kernel on every device: the path CUDA parameters take, run
/// on the CPU.
struct MultiTensorAdam : FusedAdam {
  MultiTensorAdam(std::vector<torch::Tensor> params, torch::optim::AdamOptions options)
      : FusedAdam(std::move(params), options, DenseAdamKernel::multi_tensor) {}
};

template <class Fused = FusedAdam>
void check_same(torch::optim::AdamOptions options) {
  const int saved_threads = torch::get_num_threads();
  torch::set_num_threads(2);
  torch::optim::Adam* ref_opt = nullptr;
  Fused* fused_opt = nullptr;
  const auto ref = run<torch::optim::Adam>(options, 25, &ref_opt);
  const auto fused = run<Fused>(options, 25, &fused_opt);
  // The multi-tensor kernel took the two float32 parameters (unless AMSGrad), every step; the
  // CPU default never uses it.
  const bool multi = std::is_same_v<Fused, MultiTensorAdam> && !options.amsgrad();
  CHECK(fused_opt->multi_tensor_updates() == (multi ? 2 * 25 : 0));
  for (std::size_t i = 0; i < ref.size(); ++i) {
    INFO("parameter " << i);
    CHECK(torch::allclose(fused[i], ref[i], 1e-5, 1e-6));
    CHECK_FALSE(torch::equal(fused[i], make_params()[i]));  // it did move
  }
  // The float64 parameter took torch's own path: identical.
  CHECK(torch::equal(fused[2], ref[2]));
  // Adam's state, per parameter: same step count and moments.
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const auto key_ref = attnrec::compat::optimizer_state_key(ref[i]);
    const auto key_fused = attnrec::compat::optimizer_state_key(fused[i]);
    const auto& a = static_cast<torch::optim::AdamParamState&>(*ref_opt->state().at(key_ref));
    const auto& b = static_cast<torch::optim::AdamParamState&>(*fused_opt->state().at(key_fused));
    CHECK(a.step() == b.step());
    INFO("max |m diff| " << (a.exp_avg() - b.exp_avg()).abs().max().item<double>() << ", max |m| "
                         << a.exp_avg().abs().max().item<double>());
    // FMA contraction in the fused loop rounds differently from torch's separate passes; the
    // parameters' own differences feed back into later gradients, hence the relative bounds.
    CHECK(torch::allclose(a.exp_avg(), b.exp_avg(), 1e-4, 1e-7));
    CHECK(torch::allclose(a.exp_avg_sq(), b.exp_avg_sq(), 1e-4, 1e-10));
  }
  torch::set_num_threads(saved_threads);
}

}  // namespace

TEST_CASE("fused adam follows torch::optim::Adam", "[optim][fused]") {
  SECTION("defaults") { check_same(torch::optim::AdamOptions(0.01)); }
  SECTION("betas, eps and weight decay") {
    check_same(torch::optim::AdamOptions(0.05).betas({0.8, 0.99}).eps(1e-6).weight_decay(0.1));
  }
  SECTION("amsgrad goes through torch's own update") {
    check_same(torch::optim::AdamOptions(0.01).amsgrad(true));
  }
}

TEST_CASE("fused adam: the thread split does not change the result", "[optim][fused]") {
  const int saved_threads = torch::get_num_threads();
  torch::set_num_threads(1);
  const auto one = run<FusedAdam>(torch::optim::AdamOptions(0.01), 5);
  torch::set_num_threads(2);
  const auto two = run<FusedAdam>(torch::optim::AdamOptions(0.01), 5);
  torch::set_num_threads(saved_threads);
  for (std::size_t i = 0; i < one.size(); ++i) CHECK(torch::equal(one[i], two[i]));
}

TEST_CASE("fused adam: the multi-tensor kernel (the CUDA path) follows torch::optim::Adam",
          "[optim][fused]") {
  if (!cpu_multi_tensor_adam_or_warn()) return;
  SECTION("defaults") { check_same<MultiTensorAdam>(torch::optim::AdamOptions(0.01)); }
  SECTION("betas, eps and weight decay") {
    check_same<MultiTensorAdam>(
        torch::optim::AdamOptions(0.05).betas({0.8, 0.99}).eps(1e-6).weight_decay(0.1));
  }
  SECTION("amsgrad goes through torch's own update") {
    check_same<MultiTensorAdam>(torch::optim::AdamOptions(0.01).amsgrad(true));
  }
}

TEST_CASE("fused adam: a loaded state restarts the multi-tensor step counts from its own",
          "[optim][fused][resume]") {
  if (!cpu_multi_tensor_adam_or_warn()) return;
  // Steps 4..7 run twice from the same weights and optimizer state: the second time after
  // loading the step-3 state into the optimizer that has already counted to 7. Bias correction
  // reads the device's step counts, so stale counts would change the result.
  auto params = make_params();
  MultiTensorAdam opt(params, torch::optim::AdamOptions(0.05));
  const auto step = [&](int s) {
    opt.zero_grad();
    loss_of(params, s).backward();
    opt.step();
  };
  for (int s = 0; s < 3; ++s) step(s);
  std::vector<torch::Tensor> at3;
  for (const auto& p : params) at3.push_back(p.detach().clone());
  std::stringstream state3;
  {
    torch::serialize::OutputArchive archive;
    opt.save(archive);
    archive.save_to(state3);
  }
  for (int s = 3; s < 7; ++s) step(s);
  std::vector<torch::Tensor> first;
  for (const auto& p : params) first.push_back(p.detach().clone());

  {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < params.size(); ++i) params[i].copy_(at3[i]);
  }
  torch::serialize::InputArchive archive;
  archive.load_from(state3);
  opt.load(archive);
  for (int s = 3; s < 7; ++s) step(s);
  CHECK(opt.multi_tensor_updates() == 2 * 11);
  for (std::size_t i = 0; i < params.size(); ++i) {
    INFO("parameter " << i);
    CHECK(torch::equal(params[i], first[i]));
  }
}
