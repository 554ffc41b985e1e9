// The documentation stays navigable: every relative link of README.md and docs/*.md names a
// file of the tree, and its #anchor a heading (or <a id/name>) of that file.

#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include "support.hpp"

namespace fs = std::filesystem;
using attnrec::test::read_text;
using attnrec::test::source_path;

namespace {

/// The lines of a Markdown file outside fenced code blocks.
std::vector<std::string> prose_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::istringstream in(read_text(path));
  bool fence = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("```", 0) == 0) {
      fence = !fence;
      continue;
    }
    if (!fence) lines.push_back(line);
  }
  return lines;
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens.
std::string slug(const std::string& heading) {
  std::string out;
  for (const char c : heading) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (c == ' ') {
      out += '-';
    }
  }
  return out;
}

std::set<std::string> anchors_of(const std::string& path) {
  std::set<std::string> anchors;
  const std::regex heading(R"(^#+ (.*)$)"), explicit_anchor(R"re(<a (?:id|name)="([^"]+)")re");
  std::smatch m;
  for (const auto& line : prose_lines(path)) {
    if (std::regex_match(line, m, heading)) anchors.insert(slug(m[1]));
    if (std::regex_search(line, m, explicit_anchor)) anchors.insert(m[1]);
  }
  return anchors;
}

}  // namespace

TEST_CASE("docs: every relative link of README.md and docs/ resolves", "[docs]") {
  std::vector<std::string> pages = {source_path("README.md"), source_path("data/README.md")};
  for (const auto& e : fs::directory_iterator(source_path("docs"))) {
    if (e.path().extension() == ".md") pages.push_back(e.path().string());
  }
  REQUIRE(pages.size() >= 10);
  const std::regex link(R"(\[[^\]]*\]\(([^)\s]+)\))");
  std::size_t checked = 0;
  for (const auto& page : pages) {
    for (const auto& line : prose_lines(page)) {
      for (std::sregex_iterator it(line.begin(), line.end(), link), end; it != end; ++it) {
        const std::string target = (*it)[1];
        if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) continue;
        const auto hash = target.find('#');
        const std::string file = target.substr(0, hash);
        const fs::path resolved =
            file.empty() ? fs::path(page) : fs::path(page).parent_path() / file;
        INFO(page << ": link " << target);
        CHECK(fs::exists(resolved));
        if (hash != std::string::npos && resolved.extension() == ".md" && fs::exists(resolved)) {
          CHECK(anchors_of(resolved.string()).count(target.substr(hash + 1)) == 1);
        }
        ++checked;
      }
    }
  }
  CHECK(checked >= 30);
}
