// `attnrec inspect`: what a checkpoint holds, read from its header without building the model.

#include <filesystem>
#include <fmt/format.h>
#include <memory>

#include "attnrec/train/checkpoint.hpp"
#include "commands.hpp"

namespace attnrec::cli {

void add_inspect_command(CLI::App& app, Commands& commands) {
  struct Args {
    std::string path;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("inspect", "Show what a checkpoint holds (verifies its checksum)");
  cmd->add_option("path", args->path, "Checkpoint file or run directory")->required();
  cmd->add_flag("--json", args->json, "Print JSON (includes weights_sha256)");
  commands.push_back({cmd, [args]() {
    const std::string path = resolve_checkpoint_path(args->path);
    nlohmann::json meta = read_checkpoint_meta(path);
    meta["path"] = path;
    meta["file_bytes"] = std::filesystem::file_size(path);
    if (args->json) {
      fmt::print("{}\n", meta.dump(2));
      return 0;
    }
    const auto& state = meta["train_state"];
    const auto& m = meta["config"]["model"];
    fmt::print("checkpoint      {}\n", path);
    fmt::print("kind            {} (format {}, written by attnrec {})\n", meta["kind"].get<std::string>(),
               meta["format_version"].get<std::int64_t>(), meta["attnrec_version"].get<std::string>());
    fmt::print("position        epoch {}, step {} of the epoch, global step {}, {} samples\n",
               state["epoch"].get<std::int64_t>() + 1, state["step_in_epoch"].get<std::int64_t>(),
               state["global_step"].get<std::int64_t>(), state["samples_seen"].get<std::int64_t>());
    fmt::print("model           embedding {} -> {} encoder (hidden {}) -> {} attention ({} query)\n",
               m["embedding"]["dim"].get<std::int64_t>(), m["encoder"]["type"].get<std::string>(),
               m["encoder"]["hidden"].get<std::int64_t>(), m["attention"]["type"].get<std::string>(),
               m["attention"]["query"].get<std::string>());
    fmt::print("parameters      {} in {} tensors\n", meta["parameters"].get<std::int64_t>(),
               meta["parameter_shapes"].size());
    const auto& es = state["early_stopping"];
    if (!es["best"].is_null()) {
      fmt::print("best {:<10} {:.6f} at step {}\n", es["metric"].get<std::string>(),
                 es["best"].get<double>(), es["best_step"].get<std::int64_t>());
    }
    for (auto it = meta["metrics"].begin(); it != meta["metrics"].end(); ++it) {
      if (it.value().is_number_float()) fmt::print("metric {:<9} {:.6f}\n", it.key(), it.value().get<double>());
    }
    fmt::print("file size       {} bytes\n", meta["file_bytes"].get<std::uintmax_t>());
    fmt::print("weights_sha256  {}\n", meta["weights_sha256"].get<std::string>());
    return 0;
  }});
}

}  // namespace attnrec::cli
