#pragma once
/// \file Small string helpers shared by config parsing and data readers.

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace attnrec {

/// Splits `text` at every `sep`; empty fields are kept ("a,,b" -> {"a", "", "b"}).
/// The views point into `text`. `out` is cleared first and reused to avoid allocations.
void split(std::string_view text, char sep, std::vector<std::string_view>& out);

/// Levenshtein edit distance (insertions, deletions, substitutions cost 1).
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word` by edit distance, if it is close enough to be a plausible
/// typo (distance <= max(2, |word| / 3)). Used for "did you mean" hints.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

/// Joins `items` with `sep`.
std::string join(const std::vector<std::string>& items, std::string_view sep);

/// Reads a whole file; throws IoError naming the path when it cannot be opened.
std::string read_file(const std::string& path);

/// Writes the concatenation of `parts` to `path` atomically: a temporary file in the same
/// directory, fsynced, renamed over `path`, then the directory fsynced. On failure the temporary
/// file is removed, `path` is untouched, and an IoError says "PATH: cannot write WHAT: reason".
void write_file_atomic(const std::string& path, std::initializer_list<std::string_view> parts,
                       const std::string& what = "file");
inline void write_file_atomic(const std::string& path, std::string_view content) {
  write_file_atomic(path, {content});
}

}  // namespace attnrec
