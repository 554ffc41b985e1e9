#include "attnrec/io/outputs.hpp"

#include <filesystem>

#include "attnrec/io/run_dir.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"

namespace attnrec {

namespace fs = std::filesystem;

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec);
  const auto ca = fs::weakly_canonical(fs::absolute(a, ec), ec);
  const auto cb = fs::weakly_canonical(fs::absolute(b, ec), ec);
  return ca == cb;
}

OutputGuard& OutputGuard::input(const std::string& path, const std::string& what) {
  if (!path.empty() && path != "-") inputs_.push_back({path, what});
  return *this;
}

OutputGuard& OutputGuard::output(const std::string& path, const std::string& what) {
  if (path.empty()) return *this;
  const std::string nothing = "; nothing was written";
  const OutputKind kind = output_kind(path);  // refuses a directory
  if (kind == OutputKind::stdout_) return *this;
  for (const auto& in : inputs_) {
    if (same_file(path, in.path)) {
      throw UsageError(what + " " + path + ": is the input " + in.what + " (" + in.path +
                       "); writing it would destroy the input, choose another path" + nothing);
    }
  }
  for (const auto& out : outputs_) {
    if (same_file(path, out.path)) {
      throw UsageError(what + " " + path + ": is also the path of " + out.what +
                       "; give each output its own file" + nothing);
    }
  }
  if (kind == OutputKind::regular) {
    if (const auto run = enclosing_run(path)) {
      std::error_code ec;
      const auto file = fs::weakly_canonical(fs::absolute(path, ec), ec);
      const auto relative = file.lexically_relative(fs::path(run->root));
      if (RunDir::owns(relative)) {
        throw UsageError(what + " " + path + ": is " + relative.string() +
                         " in the run "
                         "directory " +
                         run->root +
                         ", a file attnrec manages (checkpoints, "
                         "vocabularies, config, metrics, log); write outputs elsewhere" +
                         nothing);
      }
    }
  }
  outputs_.push_back({path, what});
  return *this;
}

}  // namespace attnrec
