#include "attnrec/data/categories.hpp"

#include <fmt/format.h>
#include <fstream>
#include <unordered_map>

#include "attnrec/data/tsv.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

ItemCategories read_item_categories(const std::string& path, const Vocab& items) {
  TsvReader in(path, "item categories file");
  in.expect_header({"item", "category"}, /*exact=*/true);
  StringInterner raw;
  std::vector<std::int64_t> counts;
  std::vector<std::int32_t> raw_of_item(static_cast<std::size_t>(items.size()), -1);
  std::vector<std::int64_t> line_of_item(static_cast<std::size_t>(items.size()), 0);
  while (in.next()) {
    const auto& f = in.fields();
    const std::int64_t n = in.line_number();
    if (f.size() != 2 || f[0].empty() || f[1].empty()) in.fail("expected \"item<TAB>category\"");
    const auto id = items.lookup(f[0]);
    if (id == Vocab::kOov) continue;  // not a vocabulary item: the model never sees it
    const auto c = raw.intern(f[1]);
    auto& slot = raw_of_item[static_cast<std::size_t>(id)];
    if (slot >= 0 && slot != c) {
      throw DataError(fmt::format("{}:{}: item \"{}\" already has category \"{}\" (line {})", path,
                                  n, f[0], raw.token(slot), line_of_item[id]));
    }
    if (slot < 0) {
      if (static_cast<std::size_t>(c) == counts.size()) counts.push_back(0);
      ++counts[static_cast<std::size_t>(c)];
    }
    slot = c;
    line_of_item[id] = n;
  }
  ItemCategories out;
  std::vector<std::int32_t> raw_to_id;
  out.categories = Vocab::build(raw, counts, VocabOptions{}, raw_to_id);
  out.of_item.assign(static_cast<std::size_t>(items.size()), Vocab::kOov);
  out.of_item[Vocab::kPad] = Vocab::kPad;
  for (std::int32_t id = Vocab::kReserved; id < items.size(); ++id) {
    const auto r = raw_of_item[static_cast<std::size_t>(id)];
    if (r < 0) {
      ++out.items_without_category;
    } else {
      out.of_item[static_cast<std::size_t>(id)] = raw_to_id[static_cast<std::size_t>(r)];
    }
  }
  return out;
}

}  // namespace attnrec
