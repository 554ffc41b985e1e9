#pragma once
/// \file String interning: every distinct id string is stored once, in an arena, and referred
/// to by a dense int32 index. Readers never keep per-line std::string copies.

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace attnrec {

/// Maps strings to dense indices 0, 1, 2, ... in order of first appearance.
class StringInterner {
 public:
  StringInterner() = default;
  StringInterner(const StringInterner&) = delete;
  StringInterner& operator=(const StringInterner&) = delete;
  StringInterner(StringInterner&&) = default;
  StringInterner& operator=(StringInterner&&) = default;

  /// The index of `s`, adding it when new.
  std::int32_t intern(std::string_view s);
  /// The index of `s`, or -1 when it was never interned.
  std::int32_t find(std::string_view s) const;
  /// The string with index `i`; valid as long as the interner lives.
  std::string_view token(std::int32_t i) const { return tokens_[static_cast<std::size_t>(i)]; }
  std::int64_t size() const { return static_cast<std::int64_t>(tokens_.size()); }

 private:
  std::string_view store(std::string_view s);
  /// The slot holding `s` (hash `hash`, head `head`), or the empty slot where it would go.
  std::size_t probe(std::string_view s, std::uint64_t hash, std::uint64_t head) const;
  void grow();

  /// Open addressing with linear probing: a slot is (first eight bytes, hash tag with the
  /// length in its low bits, index), index -1 when empty. Readers look up every history id of
  /// every line, so the table is kept flat (one cache line per lookup, usually) rather than a
  /// node-based std::unordered_map (several), and ids of up to eight bytes (most are a few
  /// digits) compare inside the slot without reading the stored string.
  struct Slot {
    std::uint64_t head = 0;
    std::uint32_t tag = 0;
    std::int32_t index = -1;
  };
  std::vector<Slot> slots_;
  std::vector<std::string_view> tokens_;
  std::vector<std::unique_ptr<char[]>> blocks_;
  std::size_t block_used_ = 0;
  std::size_t block_capacity_ = 0;
};

}  // namespace attnrec
