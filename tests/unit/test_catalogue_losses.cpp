// Losses over a shared pool and over the whole catalogue (train/losses.hpp): golden values
// worked out by hand, the blocked softmax against the unblocked one, finite differences, the
// blocked softmax's peak memory, deterministic pools, and both registries against the option
// table's choices.
#include <catch2/catch.hpp>

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <atomic>
#include <cmath>
#include <set>

#include "attnrec/config/choices.hpp"
#include "attnrec/data/negatives.hpp"
#include "attnrec/model/attention.hpp"
#include "attnrec/model/factory.hpp"
#include "attnrec/train/loss.hpp"
#include "attnrec/util/torch_compat.hpp"
#include "model_support.hpp"

using namespace attnrec;

namespace {

torch::Tensor row(std::vector<double> v) { return torch::tensor(v, torch::kFloat64).unsqueeze(0); }
torch::Tensor mask_row(std::vector<bool> v) {
  std::vector<std::int64_t> i(v.begin(), v.end());
  return torch::tensor(i, torch::kInt64).to(torch::kBool).unsqueeze(0);
}

double softplus(double x) { return std::log1p(std::exp(x)); }

/// logsumexp(states x table^T + bias) over every item at once: the unblocked reference.
torch::Tensor reference_lse(const torch::Tensor& states, const torch::Tensor& table,
                            const torch::Tensor& bias) {
  return torch::logsumexp(torch::addmm(bias, states, table.t()), 1);
}

}  // namespace

TEST_CASE("shared pool: a pool item equal to the positive is masked out, golden values",
          "[loss][pool]") {
  // Row: positive 2, pool logits 1, 0 and 2 (the last is the positive itself, collided).
  // Masked: logsumexp(2, 1, 0) - 2 = log(1 + e^-1 + e^-2) = 0.4076060.
  const auto logits = row({2, 1, 0, 2});
  const auto valid = mask_row({true, true, true, false});
  CHECK(sampled_softmax_loss(logits, {}, valid).item<double>() ==
        Approx(0.4076059644443806).epsilon(1e-12));
  // Unmasked, the positive would count as its own negative: log(1 + e^-1 + e^-2 + 1).
  CHECK(sampled_softmax_loss(logits).item<double>() ==
        Approx(std::log(2 + std::exp(-1.0) + std::exp(-2.0))).epsilon(1e-12));
  // With log q = (0.5, 0.25, 0.25, 0.5) the masked entry still does not count: 0.6963567 (the
  // value of test_losses' unpooled case with the same three candidates).
  const auto log_q = row({std::log(0.5), std::log(0.25), std::log(0.25), std::log(0.5)});
  CHECK(sampled_softmax_loss(logits, log_q, valid).item<double>() ==
        Approx(0.6963567487889981).epsilon(1e-12));
  // BCE and BPR average over the valid entries only.
  CHECK(candidate_bce_loss(logits, 0.0, valid).item<double>() ==
        Approx((softplus(-2) + softplus(1) + softplus(0)) / 3).epsilon(1e-12));
  CHECK(bpr_loss(logits, valid).item<double>() ==
        Approx((softplus(1 - 2) + softplus(0 - 2)) / 2).epsilon(1e-12));
}

TEST_CASE("gBCE: beta from the sampling rate and t, the loss against its formula", "[loss][gbce]") {
  // alpha = 256 / (20001 - 1) = 0.0128; beta = 1 - 0.75 (1 - 0.0128) = 0.2596.
  CHECK(gbce_beta(256, 20001, 0.75) == Approx(0.2596).epsilon(1e-12));
  CHECK(gbce_beta(256, 20001, 0.0) == 1.0);                      // plain BCE
  CHECK(gbce_beta(256, 20001, 1.0) == Approx(256.0 / 20000.0));  // beta = alpha
  CHECK(gbce_beta(5000, 100, 0.75) == 1.0);                      // alpha capped at 1
  // Positive 2, negatives 1 and 0, beta 0.5: (0.5 softplus(-2) + softplus(1) + softplus(0)) / 3.
  CHECK(gbce_loss(row({2, 1, 0}), 0.5).item<double>() ==
        Approx((0.5 * softplus(-2) + softplus(1) + softplus(0)) / 3).epsilon(1e-12));
  // It is BCE with sigma(positive)^beta as the positive's probability (gSASRec's form).
  const double beta = 0.3, s = 0.7;
  const double p_beta = std::pow(1 / (1 + std::exp(-s)), beta);
  CHECK(gbce_loss(row({s, -1}), beta).item<double>() ==
        Approx((-std::log(p_beta) + softplus(-1)) / 2).epsilon(1e-12));
  // beta = 1 is the candidate BCE; a masked negative is left out.
  CHECK(gbce_loss(row({2, 1, 0}), 1.0).item<double>() ==
        Approx(candidate_bce_loss(row({2, 1, 0})).item<double>()).epsilon(1e-12));
  CHECK(gbce_loss(row({2, 1, 5}), 0.5, mask_row({true, true, false})).item<double>() ==
        Approx((0.5 * softplus(-2) + softplus(1)) / 2).epsilon(1e-12));
}

TEST_CASE("full softmax: blocked equals unblocked to 1e-6, values and gradients",
          "[loss][softmax]") {
  torch::manual_seed(3);
  const auto states0 = torch::randn({7, 5}, torch::kFloat64);
  const auto table0 = torch::randn({23, 5}, torch::kFloat64);
  const auto bias0 = torch::randn({23}, torch::kFloat64);
  const auto targets = torch::tensor({0, 4, 22, 9, 9, 13, 1}, torch::kInt64);
  auto reference = [&](const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& b) {
    const auto logits = torch::addmm(b, s, t.t());
    return (torch::logsumexp(logits, 1) - logits.gather(1, targets.unsqueeze(1)).squeeze(1)).mean();
  };
  auto s_ref = states0.clone().requires_grad_(true);
  auto t_ref = table0.clone().requires_grad_(true);
  auto b_ref = bias0.clone().requires_grad_(true);
  const auto want = reference(s_ref, t_ref, b_ref);
  want.backward();
  for (const std::int64_t block : {1, 3, 7, 23, 100}) {
    DYNAMIC_SECTION("block " << block) {
      auto s = states0.clone().requires_grad_(true);
      auto t = table0.clone().requires_grad_(true);
      auto b = bias0.clone().requires_grad_(true);
      const auto got = full_softmax_loss(s, targets, t, b, block);
      got.backward();
      CHECK(got.item<double>() == Approx(want.item<double>()).margin(1e-6));
      CHECK((s.grad() - s_ref.grad()).abs().max().item<double>() < 1e-6);
      CHECK((t.grad() - t_ref.grad()).abs().max().item<double>() < 1e-6);
      CHECK((b.grad() - b_ref.grad()).abs().max().item<double>() < 1e-6);
    }
  }
  SECTION("without a bias, and with large logits (no overflow)") {
    const auto big = states0 * 40;
    const auto got = blocked_logsumexp(big, table0, {}, 4);
    const auto ref = reference_lse(big, table0, torch::zeros({23}, torch::kFloat64));
    CHECK((got - ref).abs().max().item<double>() < 1e-6);
    CHECK(torch::isfinite(got).all().item<bool>());
  }
}

TEST_CASE("full softmax: finite-difference gradients of the blocked logsumexp", "[loss][softmax]") {
  torch::manual_seed(4);
  auto states = torch::randn({3, 4}, torch::kFloat64).requires_grad_(true);
  auto table = torch::randn({6, 4}, torch::kFloat64).requires_grad_(true);
  auto bias = torch::randn({6}, torch::kFloat64).requires_grad_(true);
  const auto weights = torch::tensor({0.3, -1.2, 2.0}, torch::kFloat64);  // a non-uniform upstream
  const auto targets = torch::tensor({5, 0, 2}, torch::kInt64);
  // Block 4: two blocks, recomputed in the backward pass; block 8: one block, kept.
  for (const std::int64_t block : {4, 8}) {
    DYNAMIC_SECTION("block " << block) {
      auto objective = [&] {
        return (blocked_logsumexp(states, table, bias, block) * weights).sum() +
               full_softmax_loss(states, targets, table, bias, block);
      };
      objective().backward();
      attnrec::test::check_finite_differences(objective, {states, table, bias});
    }
  }
}

namespace {

/// Counts the bytes of every CPU allocation while installed, and their peak.
class CountingAllocator final : public attnrec::compat::AllocatorBase {
 public:
  static std::atomic<std::int64_t> live, peak;

 protected:
  c10::DataPtr allocate_bytes(size_t n) const override {
    void* data = c10::alloc_cpu(n);
    const auto now = live.fetch_add(static_cast<std::int64_t>(n)) + static_cast<std::int64_t>(n);
    auto old = peak.load();
    while (now > old && !peak.compare_exchange_weak(old, now)) {
    }
    return {data, new Context{data, n}, &release, c10::Device(c10::DeviceType::CPU)};
  }

 private:
  struct Context {
    void* data;
    size_t n;
  };
  static void release(void* ctx) {
    auto* c = static_cast<Context*>(ctx);
    c10::free_cpu(c->data);
    live.fetch_sub(static_cast<std::int64_t>(c->n));
    delete c;
  }
};
std::atomic<std::int64_t> CountingAllocator::live{0}, CountingAllocator::peak{0};

/// Installs a CountingAllocator for its lifetime (tensors made meanwhile may outlive it: their
/// deleter frees them through the allocator's own function).
class AllocatorScope {
 public:
  AllocatorScope() : previous_(c10::GetCPUAllocator()) {
    c10::SetCPUAllocator(&counting_, /*priority=*/255);
  }
  ~AllocatorScope() { c10::SetCPUAllocator(previous_, /*priority=*/255); }

 private:
  CountingAllocator counting_;
  c10::Allocator* previous_;
};

}  // namespace

TEST_CASE("full softmax: peak memory stays under its stated bound on a 200k-item table",
          "[loss][softmax][memory]") {
  // 200,000 items x 32 dims, 512 positions, blocks of 4,096 items. The unblocked logits alone
  // would be 512 x 200,000 x 4 B = 410 MB; the stated bound is the gradients of the inputs
  // (table, bias, states) plus 2 x positions x block floats (16.8 MB) and small vectors.
  const std::int64_t v = 200000, d = 32, m = 512, block = 4096;
  torch::manual_seed(5);
  auto table = (torch::randn({v, d}) * 0.1).requires_grad_(true);
  auto bias = torch::zeros({v}).requires_grad_(true);
  auto states = torch::randn({m, d}).requires_grad_(true);
  const auto targets = torch::randint(0, v, {m}, torch::kInt64);
  const std::int64_t gradients = (v * d + v + m * d) * 4;
  const std::int64_t bound = gradients + 2 * m * block * 4 + (4 << 20);
  std::int64_t used = 0;
  {
    AllocatorScope scope;
    CountingAllocator::peak = CountingAllocator::live.load();
    const auto start = CountingAllocator::live.load();
    auto loss = full_softmax_loss(states, targets, table, bias, block);
    loss.backward();
    used = CountingAllocator::peak.load() - start;
  }
  INFO("peak " << used << " bytes, bound " << bound << " bytes");
  CHECK(used > 0);  // the allocator saw the work
  CHECK(used <= bound);
  // The same loss unblocked needs far more: the bound is what blocking buys.
  CHECK(bound < m * v * 4);
  CHECK(torch::isfinite(table.grad()).all().item<bool>());
}

TEST_CASE("shared pool: pool_scores is one product and the objective masks collisions",
          "[loss][pool]") {
  Config c = attnrec::test::factorised_config();
  torch::manual_seed(6);
  auto model = build_recommender(c, 12, 0);
  model->eval();
  Batch b;
  b.history = torch::tensor({{2, 3, 4}, {6, 0, 0}}, torch::kInt64);
  b.mask = b.history.ne(0);
  b.lengths = torch::tensor({3, 1}, torch::kInt64);
  b.item = torch::tensor({5, 7}, torch::kInt64);
  b.pool = torch::tensor({7, 8, 9}, torch::kInt64);  // 7 is row 1's positive
  const auto [states, positives] = training_states(model, b, /*next_item=*/false);
  const auto scores = pool_scores(model, states, positives, b.pool);
  REQUIRE(scores.logits.sizes() == std::vector<std::int64_t>{2, 4});
  const std::vector<std::vector<std::int64_t>> ids = {{5, 7, 8, 9}, {7, 7, 8, 9}};
  for (int r = 0; r < 2; ++r) {
    for (int j = 0; j < 4; ++j) {
      const auto [vec, bias] = model->item_vectors(torch::tensor({ids[r][j]}, torch::kInt64));
      CHECK(scores.logits[r][j].item<double>() ==
            Approx(((states[r] * vec[0]).sum() + bias[0]).item<double>()).epsilon(1e-5));
    }
  }
  CHECK(scores.valid.equal(torch::tensor({{1, 1, 1, 1}, {1, 0, 1, 1}}).to(torch::kBool)));
  // The objective is the registry's loss of those scores.
  const TrainObjective softmax(LossKind::sampled_softmax, 0.0);
  CHECK(softmax(model, b).item<double>() ==
        Approx(sampled_softmax_loss(scores.logits, {}, scores.valid).item<double>()).epsilon(1e-6));
  // Next-item: 4 valid positions, each against the same pool.
  const auto [all_states, next] = training_states(model, b, /*next_item=*/true);
  CHECK(next.equal(torch::tensor({3, 4, 5, 7}, torch::kInt64)));
  CHECK(all_states.size(0) == 4);
  // Full softmax over items 2..11 equals the explicit cross-entropy.
  TrainObjective full(LossKind::softmax, 0.0);
  full.set_softmax_block(3);
  const auto [table, bias] = model->item_vectors(torch::arange(2, 12, torch::kInt64));
  const auto logits = torch::addmm(bias, states, table.t());
  const auto want = torch::nn::functional::cross_entropy(logits, positives - 2);
  CHECK(full(model, b).item<double>() == Approx(want.item<double>()).epsilon(1e-5));
}

TEST_CASE("shared pool: drawn per (seed, epoch, batch), never padding or OOV",
          "[negatives][pool]") {
  SampleSet train;
  train.has_labels = train.has_items = true;
  train.history_offsets = {0, 1, 2};
  train.history = {2, 3};
  train.items = {4, 5};
  train.labels = {1, 1};
  train.line_numbers = {2, 3};
  TrainingNegativesOptions o;
  o.per_positive = 0;
  o.shared_pool = 64;
  o.seed = 7;
  const TrainingNegatives negatives(train, 30, o);
  auto pool = [&](std::int64_t epoch, std::int64_t batch) {
    std::vector<std::int64_t> out(64);
    negatives.draw_pool(epoch, batch, out.data());
    return out;
  };
  CHECK(pool(1, 2) == pool(1, 2));
  CHECK(pool(1, 2) != pool(1, 3));
  CHECK(pool(1, 2) != pool(2, 2));
  std::set<std::int64_t> seen;
  for (std::int64_t batch = 0; batch < 20; ++batch) {
    for (const auto item : pool(0, batch)) {
      CHECK(item >= 2);
      CHECK(item < 30);
      seen.insert(item);
    }
  }
  CHECK(seen.size() == 28);  // uniform over every item id 2..29
  SECTION("popularity: only items with a count are drawn") {
    o.distribution = NegativeDistribution::popularity;
    const TrainingNegatives popular(train, 30, o);
    std::vector<std::int64_t> out(64);
    popular.draw_pool(0, 0, out.data());
    for (const auto item : out) CHECK((item == 4 || item == 5));
  }
}

TEST_CASE("registries: every loss and attention choice has exactly one entry", "[loss][registry]") {
  const auto& losses = loss_registry();
  CHECK(losses.size() == choices<LossKind>().size());
  for (const auto& name : choice_names(choices<LossKind>())) {
    const auto kind = parse_choice<LossKind>(name);
    REQUIRE(kind);
    INFO("train.loss " << name);
    REQUIRE(losses.count(*kind) == 1);
    const auto& entry = losses.at(*kind);
    CHECK(entry.full_catalogue == is_full_catalogue(*kind));
    CHECK(static_cast<bool>(entry.candidate) != entry.full_catalogue);
  }
  const auto& variants = attention_registry();
  const auto names = choice_names(attention_variants());
  CHECK(variants.size() == names.size());
  for (const auto& name : names) {
    INFO("model.attention.type " << name);
    CHECK(variants.count(name) == 1);
  }
  CHECK(std::is_sorted(names.begin(), names.end()));
}
