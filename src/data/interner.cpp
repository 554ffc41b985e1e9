#include "attnrec/data/interner.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "attnrec/util/error.hpp"

namespace attnrec {

std::int32_t StringInterner::intern(std::string_view s) {
  const auto it = index_.find(s);
  if (it != index_.end()) return it->second;
  if (tokens_.size() >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
    throw DataError("more than 2^31 distinct ids; attnrec indexes ids with 32-bit integers");
  }
  const std::string_view stored = store(s);
  const auto id = static_cast<std::int32_t>(tokens_.size());
  tokens_.push_back(stored);
  index_.emplace(stored, id);
  return id;
}

std::int32_t StringInterner::find(std::string_view s) const {
  const auto it = index_.find(s);
  return it == index_.end() ? -1 : it->second;
}

std::string_view StringInterner::store(std::string_view s) {
  // Strings live in large blocks that never move, so the views stay valid.
  if (block_used_ + s.size() > block_capacity_) {
    const std::size_t capacity = std::max<std::size_t>(1 << 16, s.size());
    blocks_.push_back(std::make_unique<char[]>(capacity));
    block_used_ = 0;
    block_capacity_ = capacity;
  }
  char* dst = blocks_.back().get() + block_used_;
  if (!s.empty()) std::memcpy(dst, s.data(), s.size());
  block_used_ += s.size();
  return {dst, s.size()};
}

}  // namespace attnrec
