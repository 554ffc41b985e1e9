#pragma once
/// \file `attnrec export`: a trained model in an interchange format, for serving outside
/// attnrec.
///
/// safetensors: OUTPUT/model.safetensors holds every parameter and buffer under its PyTorch
/// state_dict name, and in its metadata the architecture (the module options the Python reference
/// module `scripts/attnrec_reference.py` is built from), the resolved config, the vocabularies'
/// SHA-256 and attnrec's version; the vocabularies are copied beside it (items.vocab,
/// users.vocab: one token per line, the line number is the id).
///
/// torchscript: OUTPUT/model.pt, a TorchScript module holding the weights (attribute names are
/// the state_dict names with '_' for '.') and a scripted
/// `forward(history, lengths, candidates, user=None) -> logits`, with the same metadata as a
/// JSON extra file (attnrec.json); loadable by torch.jit.load (Python) and torch::jit::load
/// (C++). Variants without a TorchScript form (bidirectional RNNs) are refused by name.

#include <torch/script.h>
#include <nlohmann/json.hpp>
#include <string>

#include "attnrec/model/recommender.hpp"

namespace attnrec {

/// What `attnrec export` does.
struct ExportRequest {
  /// Checkpoint file or run directory (its best model).
  std::string checkpoint;
  /// "safetensors" or "torchscript".
  std::string format = "safetensors";
  /// Output directory (created if missing).
  std::string output;
};

/// The version of the export's layout (metadata keys, file names); readers check it.
constexpr int kExportFormatVersion = 1;

/// The architecture of a model as plain JSON: every option that shapes its forward pass
/// (embedding, encoder, attention, head), with choices by their config names.
nlohmann::json architecture_json(const RecommenderOptions& options);

/// The TorchScript module of `model` (see the file comment); throws UsageError naming a variant
/// that has no TorchScript form.
torch::jit::Module to_torchscript(Recommender& model);

/// Runs the command; returns its summary (files written, tensors, bytes).
nlohmann::json run_export(const ExportRequest& request);

}  // namespace attnrec
