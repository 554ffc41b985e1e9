// `attnrec export`: flags -> an ExportRequest; the use case lives in tools/export.hpp.

#include <spdlog/spdlog.h>
#include <memory>

#include "attnrec/dist/world.hpp"
#include "attnrec/tools/export.hpp"
#include "commands.hpp"

namespace attnrec::cli {

void add_export_command(CLI::App& app, Commands& commands) {
  auto r = std::make_shared<ExportRequest>();
  auto* cmd = app.add_subcommand(
      "export", "Write a trained model for serving: safetensors or TorchScript, with vocabularies");
  cmd->add_option("--checkpoint", r->checkpoint,
                  "Checkpoint file, or a run directory (its best model)")
      ->required();
  cmd->add_option("--format", r->format,
                  "safetensors: model.safetensors (PyTorch state_dict names; architecture, "
                  "config and vocabulary SHA-256 in its metadata); torchscript: model.pt, a "
                  "scripted forward(history, lengths, candidates, user=None) for torch.jit.load; "
                  "either with the vocabularies")
      ->capture_default_str()
      ->check(CLI::IsMember({"safetensors", "torchscript"}));
  cmd->add_option("--output", r->output, "Output directory (created if missing)")->required();
  commands.push_back(
      {cmd, [r]() {
         require_single_process(discover_world(), "attnrec export");
         const auto summary = run_export(*r);
         spdlog::info("wrote {} tensors ({} values) to {}", summary["tensors"].get<std::int64_t>(),
                      summary["values"].get<std::int64_t>(), summary["weights"].get<std::string>());
         return 0;
       }});
}

}  // namespace attnrec::cli
