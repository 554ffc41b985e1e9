// `attnrec inspect`: what a checkpoint holds, read from its header without building the model.

#include <fmt/format.h>
#include <filesystem>
#include <memory>

#include "attnrec/io/checkpoint.hpp"
#include "attnrec/io/run_dir.hpp"
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
  commands.push_back(
      {cmd, [args]() {
         const std::string path = resolve_checkpoint_path(args->path);
         const CheckpointMeta meta = read_checkpoint_meta(path);
         const auto file_bytes = std::filesystem::file_size(path);
         if (args->json) {
           nlohmann::json j = meta.to_json();
           j["path"] = path;
           j["file_bytes"] = file_bytes;
           fmt::print("{}\n", j.dump(2));
           return 0;
         }
         const auto& state = meta.train_state;
         const auto& m = meta.config.model;
         fmt::print("checkpoint      {}\n", path);
         fmt::print("kind            {} (format {}, written by attnrec {})\n", meta.kind,
                    meta.format_version, meta.attnrec_version);
         fmt::print("position        epoch {}, step {} of the epoch, global step {}, {} samples\n",
                    state.epoch + 1, state.step_in_epoch, state.global_step, state.samples_seen);
         fmt::print(
             "model           embedding {} -> {} encoder (hidden {}) -> {} attention ({} "
             "query)\n",
             m.embedding.dim, name_of(m.encoder.type), m.encoder.hidden, m.attention.type,
             name_of(m.attention.query));
         fmt::print("parameters      {} in {} tensors\n", meta.parameters,
                    meta.parameter_shapes.size());
         const auto& es = state.early_stopping;
         if (es.best()) {
           fmt::print("best {:<10} {:.6f} at step {}\n", es.metric_name(), *es.best(),
                      es.best_step());
         }
         for (auto it = meta.metrics.begin(); it != meta.metrics.end(); ++it) {
           if (it.value().is_number_float()) {
             fmt::print("metric {:<9} {:.6f}\n", it.key(), it.value().get<double>());
           }
         }
         fmt::print("file size       {} bytes\n", file_bytes);
         fmt::print("weights_sha256  {}\n", meta.weights_sha256);
         return 0;
       }});
}

}  // namespace attnrec::cli
