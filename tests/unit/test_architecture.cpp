// The structure the README states, checked on the source tree: dependencies point down only,
// no function is longer than 150 lines, and the option table is the only list of options.
#include <catch2/catch.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "support.hpp"

using attnrec::test::source_path;
namespace fs = std::filesystem;

namespace {

/// Layers from the bottom up; a file may include its own layer and the ones below it.
/// `kernels` are the private CPU kernels (src/kernels) that model and train use.
const std::vector<std::string> kLayers = {"util", "kernels", "config", "data",  "model", "io",
                                          "eval", "train",   "dist",   "tools", "cli"};

int rank_of(const std::string& layer) {
  const auto it = std::find(kLayers.begin(), kLayers.end(), layer);
  return it == kLayers.end() ? -1 : static_cast<int>(it - kLayers.begin());
}

/// The layer of a source or header file: its folder under src/ or include/attnrec/.
std::string layer_of(const fs::path& relative) {
  auto it = relative.begin();
  if (it == relative.end()) return "";
  if (it->string() == "include") ++it;  // include/attnrec/<layer>/...
  if (it != relative.end() && (it->string() == "attnrec" || it->string() == "src")) ++it;
  return it == relative.end() ? "" : it->string();
}

std::vector<fs::path> source_files() {
  std::vector<fs::path> out;
  for (const char* root : {"src", "include"}) {
    for (const auto& e : fs::recursive_directory_iterator(source_path(root))) {
      const auto ext = e.path().extension();
      if (e.is_regular_file() && (ext == ".cpp" || ext == ".hpp")) out.push_back(e.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

fs::path in_tree(const fs::path& p) { return p.lexically_relative(source_path("")); }

}  // namespace

TEST_CASE("architecture: dependencies point down only", "[architecture]") {
  const std::regex project_include(R"re(#include\s+"(attnrec/([a-z_]+)/|\.\./([a-z_]+)/))re");
  std::vector<std::string> upward;
  std::size_t files = 0, includes = 0;
  for (const auto& file : source_files()) {
    const auto rel = in_tree(file);
    const std::string layer = layer_of(rel);
    INFO(rel.string());
    REQUIRE(rank_of(layer) >= 0);  // every file lives in a known layer
    ++files;
    std::ifstream in(file);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      std::smatch m;
      if (!std::regex_search(line, m, project_include)) continue;
      ++includes;
      const std::string target = m[2].matched ? m[2].str() : m[3].str();
      if (rank_of(target) > rank_of(layer)) {
        upward.push_back(rel.string() + ":" + std::to_string(n) + ": " + layer + " -> " + target);
      }
    }
  }
  INFO("upward includes:\n"
       << [&] {
            std::string s;
            for (const auto& u : upward) s += u + "\n";
            return s;
          }());
  CHECK(upward.empty());
  CHECK(files > 100);
  CHECK(includes > 200);
}

TEST_CASE("architecture: no test name holds a semicolon (CTest splits names there)",
          "[architecture]") {
  const std::regex name(R"re(TEST_CASE\(\s*"([^"]*)")re");
  std::vector<std::string> bad;
  std::size_t names = 0;
  for (const auto& e : fs::recursive_directory_iterator(source_path("tests"))) {
    if (!e.is_regular_file() || e.path().extension() != ".cpp") continue;
    std::ifstream in(e.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (std::sregex_iterator it(text.begin(), text.end(), name), end; it != end; ++it) {
      ++names;
      if ((*it)[1].str().find(';') != std::string::npos) bad.push_back((*it)[1].str());
    }
  }
  for (const auto& b : bad) INFO(b);
  CHECK(bad.empty());
  CHECK(names > 100);
}

TEST_CASE("architecture: only dist/ includes c10d", "[architecture][dist]") {
  std::vector<std::string> outside;
  std::size_t inside = 0;
  for (const auto& file : source_files()) {
    const auto rel = in_tree(file);
    std::ifstream in(file);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.find("#include") == std::string::npos ||
          line.find("distributed/c10d") == std::string::npos) {
        continue;
      }
      if (layer_of(rel) == "dist") {
        ++inside;
      } else {
        outside.push_back(rel.string() + ":" + std::to_string(n));
      }
    }
  }
  INFO("c10d included outside dist/: " << outside.size());
  for (const auto& o : outside) INFO(o);
  CHECK(outside.empty());
  CHECK(inside > 0);  // the rule checks something
}

TEST_CASE("architecture: no function in src/ is longer than 150 lines", "[architecture]") {
  // clang-format (checked by the test command) starts every namespace-level definition at
  // column 0 and puts its closing brace alone on a line at column 0: a body runs from the
  // signature's first line to the next line that is exactly "}". Types, namespaces and
  // initialised variables ("= {") are not functions.
  const auto starts_definition = [](const std::string& line) {
    if (line.empty() || !(std::isalpha(static_cast<unsigned char>(line[0])) || line[0] == '_')) {
      return false;
    }
    for (const char* word : {"namespace", "using", "struct", "class", "enum", "template", "extern",
                             "static_assert", "typedef", "union"}) {
      if (line.rfind(word, 0) == 0) return false;
    }
    return line.find('(') != std::string::npos;
  };
  std::vector<std::string> long_functions;
  std::size_t functions = 0;
  int fit_lines = 0;
  for (const auto& file : source_files()) {
    if (file.extension() != ".cpp") continue;
    std::ifstream in(file);
    std::string line, name;
    int candidate = 0, start = 0;
    for (int n = 1; std::getline(in, line); ++n) {
      if (start == 0) {
        if (candidate == 0 && starts_definition(line)) {
          candidate = n;
          name = line.substr(0, line.find('('));
        }
        if (candidate != 0) {
          const auto last = line.find_last_not_of(" \t");
          const char end = last == std::string::npos ? ' ' : line[last];
          if (end == ';' || end == '}' || line.find("= {") != std::string::npos) {
            candidate = 0;  // a declaration, a one-line body or an initialised variable
          } else if (end == '{') {
            start = candidate;
            candidate = 0;
          }
        }
      } else if (line == "}") {
        ++functions;
        if (name == "TrainState Trainer::fit") fit_lines = n - start + 1;
        if (n - start + 1 > 150) {
          long_functions.push_back(in_tree(file).string() + ":" + std::to_string(start) + " " +
                                   name + " (" + std::to_string(n - start + 1) + " lines)");
        }
        start = 0;
      }
    }
  }
  CHECK(functions > 300);
  // The training loop reads in one screen.
  CHECK(fit_lines > 20);
  CHECK(fit_lines <= 60);
  INFO([&] {
    std::string s;
    for (const auto& f : long_functions) s += f + "\n";
    return s;
  }());
  CHECK(long_functions.empty());
}
