#pragma once
/// \file Small string helpers shared by config parsing and data readers.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace attnrec {

/// Splits `text` at every `sep`; empty fields are kept ("a,,b" -> {"a", "", "b"}).
/// The views point into `text`. `out` is cleared first and reused to avoid allocations.
void split(std::string_view text, char sep, std::vector<std::string_view>& out);

/// Parses a whole field as a base-10 integer (optional leading '-'); false on anything else.
bool parse_int64(std::string_view text, std::int64_t& out);
/// Parses a whole field as a finite decimal number; false on anything else.
bool parse_double(std::string_view text, double& out);

/// Levenshtein edit distance (insertions, deletions, substitutions cost 1).
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word` by edit distance, if it is close enough to be a plausible
/// typo (distance <= max(2, |word| / 3)). Used for "did you mean" hints.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

/// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or code points above
/// U+10FFFF). Config values must be, since they are stored as JSON.
bool is_valid_utf8(std::string_view text);

/// Joins `items` with `sep`.
std::string join(const std::vector<std::string>& items, std::string_view sep);

}  // namespace attnrec
