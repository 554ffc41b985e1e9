#include "attnrec/tools/export.hpp"

#include <filesystem>

#include "attnrec/config/choices.hpp"
#include "attnrec/config/fields.hpp"
#include "attnrec/io/checkpoint.hpp"
#include "attnrec/io/outputs.hpp"
#include "attnrec/io/safetensors.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/hash.hpp"

namespace attnrec {

namespace fs = std::filesystem;

nlohmann::json architecture_json(const RecommenderOptions& o) {
  const auto& e = o.encoder();
  const auto& t = e.transformer();
  const auto& a = o.attention();
  return {{"item_vocab", o.item_vocab()},
          {"embedding_dim", o.embedding_dim()},
          {"category_vocab", o.category_vocab()},
          {"category_dim", o.category_dim()},
          {"user_vocab", o.user_vocab()},
          {"has_item", o.has_item()},
          {"share_candidate", o.share_candidate()},
          {"query", name_of(o.query())},
          {"positional", name_of(o.positional())},
          {"max_history", o.max_history()},
          {"head_type", name_of(o.head_type())},
          {"head_inputs", name_of(o.head_inputs())},
          {"head_hidden", o.head_hidden()},
          {"activation", name_of(o.activation())},
          {"item_bias", o.item_bias()},
          {"encoder",
           {{"type", name_of(e.type())},
            {"input_size", e.input_size()},
            {"hidden_size", e.hidden_size()},
            {"layers", e.layers()},
            {"bidirectional", e.bidirectional()},
            {"transformer",
             {{"dim", t.dim()},
              {"layers", t.layers()},
              {"heads", t.heads()},
              {"ff_size", t.ff_size()},
              {"activation", name_of(t.activation())},
              {"norm", name_of(t.norm())},
              {"causal", t.causal()},
              {"positional", name_of(t.positional())},
              {"max_length", t.max_length()},
              {"scale_input", t.scale_input()},
              {"norm_eps", t.norm_eps()}}}}},
          {"attention",
           {{"type", a.type()},
            {"dim", a.dim()},
            {"heads", a.heads()},
            {"hidden", a.hidden()},
            {"temperature", a.temperature()}}}};
}

namespace {

/// Every parameter and buffer under its state_dict name.
std::vector<NamedTensor> state_dict(Recommender& model) {
  std::vector<NamedTensor> out;
  for (const auto& p : model->named_parameters()) out.push_back({p.key(), p.value()});
  for (const auto& b : model->named_buffers()) out.push_back({b.key(), b.value()});
  return out;
}

}  // namespace

nlohmann::json run_export(const ExportRequest& r) {
  if (r.format != "safetensors" && r.format != "torchscript") {
    throw UsageError("--format: expected safetensors or torchscript, got \"" + r.format + "\"");
  }
  if (r.output.empty()) throw UsageError("--output: required (a directory)");
  const std::string checkpoint = resolve_checkpoint_path(r.checkpoint);
  const CheckpointMeta meta = read_checkpoint_meta(checkpoint);
  const auto dir = fs::path(checkpoint).parent_path();
  const auto items_vocab = (dir / meta.items.file).lexically_normal().string();
  const auto users_vocab = (dir / meta.users.file).lexically_normal().string();
  const auto out = fs::path(r.output);
  const auto weights =
      (out / (r.format == "torchscript" ? "model.pt" : "model.safetensors")).string();
  const auto items_out = (out / "items.vocab").string(), users_out = (out / "users.vocab").string();
  OutputGuard()
      .input(checkpoint, "--checkpoint")
      .input(items_vocab, "the checkpoint's item vocabulary")
      .input(users_vocab, "the checkpoint's user vocabulary")
      .output(weights, "--output")
      .output(items_out, "--output")
      .output(users_out, "--output");
  LoadedModel loaded = load_model(checkpoint, torch::kCPU);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec || !fs::is_directory(out)) {
    throw IoError(r.output + ": cannot create the output directory (" + ec.message() + ")");
  }
  const std::string items_text = read_file(items_vocab), users_text = read_file(users_vocab);
  const auto tensors = state_dict(loaded.model);
  const std::map<std::string, std::string> metadata = {
      {"format", "attnrec-export"},
      {"format_version", std::to_string(kExportFormatVersion)},
      {"attnrec_version", ATTNREC_VERSION},
      {"architecture", architecture_json(loaded.model->options).dump()},
      {"config", config_to_json(loaded.config).dump()},
      {"items_sha256", sha256_hex(items_text)},
      {"users_sha256", sha256_hex(users_text)},
      {"weights_sha256", meta.weights_sha256},
      {"checkpoint", checkpoint}};
  if (r.format == "safetensors") {
    write_safetensors(weights, tensors, metadata);
  } else {
    auto module = to_torchscript(loaded.model);
    // Saved beside the target, then renamed into place: never a partial model.pt.
    const std::string tmp = weights + ".tmp";
    module.save(tmp, {{"attnrec.json", nlohmann::json(metadata).dump()}});
    fs::rename(tmp, weights, ec);
    if (ec) throw IoError(weights + ": cannot move the saved module into place: " + ec.message());
  }
  write_file_atomic(items_out, items_text);
  write_file_atomic(users_out, users_text);
  std::int64_t values = 0;
  for (const auto& t : tensors) values += t.tensor.numel();
  return {{"checkpoint", checkpoint},
          {"format", r.format},
          {"output", r.output},
          {"weights", weights},
          {"tensors", tensors.size()},
          {"values", values},
          {"files", {weights, items_out, users_out}}};
}

}  // namespace attnrec
