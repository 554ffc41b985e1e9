#include "attnrec/data/batch.hpp"
#include "attnrec/data/batching.hpp"

#include <algorithm>
#include <numeric>

#include "attnrec/data/vocab.hpp"
#include "attnrec/util/rng.hpp"

namespace attnrec {

namespace {
torch::Tensor maybe_to(const torch::Tensor& t, const torch::Device& device) {
  return t.defined() ? t.to(device, /*non_blocking=*/true) : t;
}
}  // namespace

Batch Batch::to(const torch::Device& device) const {
  if (history.device() == device) return *this;
  // lengths stay on the host: only sequence packing reads them, and it needs them there.
  return Batch{maybe_to(history, device), maybe_to(mask, device),      lengths,
               maybe_to(item, device),    maybe_to(user, device),      maybe_to(label, device),
               maybe_to(index, device),   maybe_to(negatives, device), maybe_to(pool, device)};
}

Batch make_batch(const SampleSet& set, const std::int64_t* indices, std::int64_t n,
                 bool pin_memory) {
  std::int64_t longest = 1;
  for (std::int64_t b = 0; b < n; ++b) longest = std::max(longest, set.history_length(indices[b]));
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).pinned_memory(pin_memory);
  Batch batch;
  batch.history = torch::zeros({n, longest}, i64);  // zeros == Vocab::kPad
  batch.mask = torch::zeros({n, longest}, i64.dtype(torch::kBool));
  batch.lengths = torch::empty({n}, i64);
  batch.index = torch::empty({n}, i64);
  // Raw pointer fills: this runs for every batch, so no per-element tensor indexing.
  auto* hist = batch.history.data_ptr<std::int64_t>();
  auto* mask = batch.mask.data_ptr<bool>();
  auto* lengths = batch.lengths.data_ptr<std::int64_t>();
  auto* index = batch.index.data_ptr<std::int64_t>();
  static_assert(Vocab::kPad == 0, "padding must be the zero id");
  for (std::int64_t b = 0; b < n; ++b) {
    const std::int64_t s = indices[b];
    const std::int64_t begin = set.history_offsets[s];
    const std::int64_t len = set.history_offsets[s + 1] - begin;
    for (std::int64_t t = 0; t < len; ++t) {
      hist[b * longest + t] = set.history[begin + t];
      mask[b * longest + t] = true;
    }
    lengths[b] = len;
    index[b] = s;
  }
  if (set.has_items) {
    batch.item = torch::empty({n}, i64);
    auto* p = batch.item.data_ptr<std::int64_t>();
    for (std::int64_t b = 0; b < n; ++b) p[b] = set.items[indices[b]];
  }
  if (set.has_users) {
    batch.user = torch::empty({n}, i64);
    auto* p = batch.user.data_ptr<std::int64_t>();
    for (std::int64_t b = 0; b < n; ++b) p[b] = set.users[indices[b]];
  }
  if (set.has_labels) {
    batch.label = torch::empty({n}, i64.dtype(torch::kFloat32));
    auto* p = batch.label.data_ptr<float>();
    for (std::int64_t b = 0; b < n; ++b) p[b] = set.labels[indices[b]];
  }
  return batch;
}

std::vector<std::int64_t> epoch_order(std::int64_t n, bool shuffle, std::uint64_t seed,
                                      std::int64_t epoch) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  if (shuffle) {
    Rng rng(Rng::mix(seed, static_cast<std::uint64_t>(epoch)));
    rng.shuffle(order);
  }
  return order;
}

}  // namespace attnrec
