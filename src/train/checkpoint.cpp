#include "attnrec/train/checkpoint.hpp"

#include <cstdio>
#include <filesystem>
#include <unistd.h>

#include "attnrec/config/fields.hpp"
#include "attnrec/model/factory.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/hash.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

namespace fs = std::filesystem;

namespace {
constexpr const char* kMetaKey = "attnrec_meta";
constexpr const char* kFormatKey = "attnrec_format";

torch::serialize::InputArchive open_archive(const std::string& path) {
  if (!fs::exists(path)) throw CheckpointError(path + ": checkpoint not found");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    throw CheckpointError(path + ": not a readable attnrec checkpoint (truncated or corrupted?): " +
                          e.what_without_backtrace());
  }
  return archive;
}
}  // namespace

void save_checkpoint(const std::string& path, Recommender& model,
                     torch::optim::Optimizer* optimizer, nlohmann::json meta) {
  meta["format_version"] = kCheckpointFormatVersion;
  meta["attnrec_version"] = ATTNREC_VERSION;
  torch::serialize::OutputArchive archive;
  archive.write(kFormatKey, c10::IValue(kCheckpointFormatVersion));
  archive.write(kMetaKey, c10::IValue(meta.dump()));
  torch::serialize::OutputArchive model_archive;
  model->save(model_archive);
  archive.write("model", model_archive);
  if (optimizer) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  // Temporary name in the same directory, then rename: readers see the old file or the new
  // one, never a partial one.
  const fs::path target(path);
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp" +
                                               std::to_string(::getpid()));
  try {
    archive.save_to(tmp.string());
  } catch (const c10::Error& e) {
    std::remove(tmp.c_str());
    throw IoError(path + ": cannot write checkpoint: " + e.what_without_backtrace());
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw IoError(path + ": cannot move checkpoint into place: " + ec.message());
  }
}

nlohmann::json read_checkpoint_meta(const std::string& path) {
  auto archive = open_archive(path);
  c10::IValue format, meta;
  if (!archive.try_read(kFormatKey, format) || !archive.try_read(kMetaKey, meta)) {
    throw CheckpointError(path + ": not an attnrec checkpoint (no attnrec header)");
  }
  if (format.toInt() != kCheckpointFormatVersion) {
    throw CheckpointError(path + ": checkpoint format " + std::to_string(format.toInt()) +
                          " but this attnrec reads format " +
                          std::to_string(kCheckpointFormatVersion));
  }
  return nlohmann::json::parse(meta.toStringRef());
}

void load_checkpoint_weights(const std::string& path, Recommender& model,
                             torch::optim::Optimizer* optimizer) {
  auto archive = open_archive(path);
  try {
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    model->load(model_archive);
    if (optimizer) {
      torch::serialize::InputArchive optimizer_archive;
      archive.read("optimizer", optimizer_archive);
      optimizer->load(optimizer_archive);
    }
  } catch (const c10::Error& e) {
    throw CheckpointError(path + ": weights do not match the model built from its config: " +
                          e.what_without_backtrace());
  }
}

nlohmann::json vocab_reference(const std::string& checkpoint_path, const std::string& vocab_path) {
  const auto base = fs::absolute(checkpoint_path).parent_path();
  return {{"file", fs::relative(fs::absolute(vocab_path), base).string()},
          {"sha256", sha256_hex(read_file(vocab_path))}};
}

std::string resolve_checkpoint_path(const std::string& path) {
  if (!fs::exists(path)) throw CheckpointError(path + ": no such checkpoint or run directory");
  if (!fs::is_directory(path)) return path;
  for (const char* name : {"checkpoints/best.pt", "checkpoints/final.pt"}) {
    const auto candidate = fs::path(path) / name;
    if (fs::exists(candidate)) return candidate.string();
  }
  throw CheckpointError(path + ": a directory without checkpoints/best.pt or "
                        "checkpoints/final.pt; pass a run directory or a checkpoint file");
}

namespace {
Vocab load_referenced_vocab(const std::string& checkpoint, const nlohmann::json& ref,
                            const char* which) {
  const auto file = fs::absolute(checkpoint).parent_path() / ref.at("file").get<std::string>();
  const auto shown = fs::path(file).lexically_normal().string();
  if (!fs::exists(file)) {
    throw CheckpointError(checkpoint + ": its " + std::string(which) + " vocabulary " + shown +
                          " is missing (a checkpoint needs the vocabulary files of its run "
                          "directory; copy the whole run directory)");
  }
  const auto text = read_file(file.string());
  if (sha256_hex(text) != ref.at("sha256").get<std::string>()) {
    throw CheckpointError(checkpoint + ": the " + std::string(which) + " vocabulary " + shown +
                          " has changed since the checkpoint was written (SHA-256 differs)");
  }
  return Vocab::from_text(text, shown);
}
}  // namespace

LoadedModel load_model(const std::string& path, const torch::Device& device) {
  LoadedModel loaded;
  loaded.checkpoint_path = resolve_checkpoint_path(path);
  const auto& ckpt = loaded.checkpoint_path;
  loaded.meta = read_checkpoint_meta(ckpt);
  try {
    loaded.config = config_from_json(loaded.meta.at("config"), ckpt + " (stored config)");
    loaded.items = load_referenced_vocab(ckpt, loaded.meta.at("vocab").at("items"), "item");
    loaded.users = load_referenced_vocab(ckpt, loaded.meta.at("vocab").at("users"), "user");
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(ckpt + ": incomplete checkpoint header: " + e.what());
  }
  loaded.model = build_recommender(loaded.config, loaded.items.size(), loaded.users.size());
  load_checkpoint_weights(ckpt, loaded.model, nullptr);
  loaded.model->to(device);
  loaded.model->eval();
  return loaded;
}

}  // namespace attnrec
