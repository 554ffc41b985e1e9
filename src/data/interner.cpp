#include "attnrec/data/interner.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "attnrec/util/error.hpp"

namespace attnrec {

namespace {

/// 64-bit hash of a short string: 8-byte words mixed with a multiply and the splitmix64
/// finaliser (ids are mostly a few digits; std::hash's byte loop was a tenth of read time).
std::uint64_t hash_bytes(std::string_view s) {
  std::uint64_t h = 0x9E3779B97F4A7C15ull ^ (s.size() * 0xFF51AFD7ED558CCDull);
  const char* p = s.data();
  std::size_t n = s.size();
  const auto mix = [](std::uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  };
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = mix(h ^ w);
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = mix(h ^ w ^ 0x2545F4914F6CDD1Dull);
  }
  return h;
}

/// The first eight bytes of `s`, zero-padded.
std::uint64_t head_of(std::string_view s) {
  std::uint64_t w = 0;
  if (!s.empty()) std::memcpy(&w, s.data(), std::min<std::size_t>(s.size(), 8));
  return w;
}

/// High hash bits with min(length, 15) in the low four: equal tags and heads of strings up to
/// eight bytes mean equal strings (the length tells "a" from "a\0").
std::uint32_t tag_of(std::uint64_t hash, std::size_t size) {
  return (static_cast<std::uint32_t>(hash >> 32) & ~0xFu) |
         static_cast<std::uint32_t>(std::min<std::size_t>(size, 15));
}

}  // namespace

std::size_t StringInterner::probe(std::string_view s, std::uint64_t hash,
                                  std::uint64_t head) const {
  const std::size_t mask = slots_.size() - 1;
  const std::uint32_t tag = tag_of(hash, s.size());
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.index < 0) return i;
    if (slot.tag == tag && slot.head == head &&
        (s.size() <= 8 || tokens_[static_cast<std::size_t>(slot.index)] == s)) {
      return i;
    }
  }
}

void StringInterner::grow() {
  // Capacity stays a power of two at most half full, so probes are short and always end.
  std::vector<Slot> old(std::max<std::size_t>(64, slots_.size() * 2));
  old.swap(slots_);
  const std::size_t mask = slots_.size() - 1;
  for (const Slot& slot : old) {
    if (slot.index < 0) continue;
    // The hash is not stored: recompute it (growth is rare, lookups are not).
    std::size_t i = hash_bytes(tokens_[static_cast<std::size_t>(slot.index)]) & mask;
    while (slots_[i].index >= 0) i = (i + 1) & mask;
    slots_[i] = slot;
  }
}

std::int32_t StringInterner::intern(std::string_view s) {
  if (slots_.empty()) grow();
  const std::uint64_t hash = hash_bytes(s), head = head_of(s);
  std::size_t i = probe(s, hash, head);
  if (slots_[i].index >= 0) return slots_[i].index;
  if (tokens_.size() >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
    throw DataError("more than 2^31 distinct ids; attnrec indexes ids with 32-bit integers");
  }
  const auto id = static_cast<std::int32_t>(tokens_.size());
  tokens_.push_back(store(s));
  if (2 * tokens_.size() > slots_.size()) {
    grow();
    i = probe(s, hash, head);  // the new token is not in the table yet: its empty slot
  }
  slots_[i] = Slot{head, tag_of(hash, s.size()), id};
  return id;
}

std::int32_t StringInterner::find(std::string_view s) const {
  if (slots_.empty()) return -1;
  return slots_[probe(s, hash_bytes(s), head_of(s))].index;
}

std::string_view StringInterner::store(std::string_view s) {
  // Strings live in large blocks that never move, so the views stay valid.
  if (s.empty()) return {};
  if (block_used_ + s.size() > block_capacity_) {
    const std::size_t capacity = std::max<std::size_t>(1 << 16, s.size());
    blocks_.push_back(std::make_unique<char[]>(capacity));
    block_used_ = 0;
    block_capacity_ = capacity;
  }
  char* dst = blocks_.back().get() + block_used_;
  std::memcpy(dst, s.data(), s.size());
  block_used_ += s.size();
  return {dst, s.size()};
}

}  // namespace attnrec
