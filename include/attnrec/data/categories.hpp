#pragma once
/// \file The item-category side feature: an `item<TAB>category` file mapped onto the item
/// vocabulary.

#include <cstdint>
#include <string>
#include <vector>

#include "attnrec/data/vocab.hpp"

namespace attnrec {

struct ItemCategories {
  /// Category vocabulary: 0 padding, 1 unknown, then the categories of vocabulary items.
  Vocab categories;
  /// Category id of every item id (size items.size()): 0 for padding, 1 for OOV and for
  /// items the file does not list.
  std::vector<std::int64_t> of_item;
  std::int64_t items_without_category = 0;
};

/// Reads `path` (header `item<TAB>category`, one line per item; an item listed twice with
/// different categories is an error naming both lines) for the items of `items`.
ItemCategories read_item_categories(const std::string& path, const Vocab& items);

}  // namespace attnrec
