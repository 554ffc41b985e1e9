#include "attnrec/train/checkpoint.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <sstream>

#include "attnrec/config/fields.hpp"
#include "attnrec/model/factory.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/hash.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

namespace fs = std::filesystem;

namespace {

constexpr const char* kMagic = "ATTNREC-CHECKPOINT";

/// The parts of a checkpoint file after verification.
struct RawCheckpoint {
  nlohmann::json meta;
  std::string payload;
};

RawCheckpoint read_raw(const std::string& path, bool with_payload) {
  if (!fs::exists(path)) throw CheckpointError(path + ": checkpoint not found");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckpointError(path + ": cannot open checkpoint");
  std::string magic_line, sizes_line;
  std::getline(in, magic_line);
  std::getline(in, sizes_line);
  std::istringstream magic(magic_line);
  std::string word;
  std::int64_t format = -1;
  magic >> word >> format;
  if (word != kMagic) {
    throw CheckpointError(path + ": not an attnrec checkpoint (no \"" + kMagic + "\" header)");
  }
  if (format != kCheckpointFormatVersion) {
    throw CheckpointError(fmt::format(
        "{}: checkpoint format {} is {} than this attnrec's format {}; use the attnrec version "
        "that wrote it{}",
        path, format, format > kCheckpointFormatVersion ? "newer" : "older",
        kCheckpointFormatVersion,
        format > kCheckpointFormatVersion ? " or a newer one" : " (no converter exists yet)"));
  }
  std::istringstream sizes(sizes_line);
  std::int64_t meta_bytes = -1, payload_bytes = -1;
  std::string checksum;
  sizes >> meta_bytes >> payload_bytes >> checksum;
  if (meta_bytes < 0 || payload_bytes < 0 || checksum.size() != 64) {
    throw CheckpointError(path + ": corrupted checkpoint header (line 2)");
  }
  std::string meta_text(static_cast<std::size_t>(meta_bytes), '\0');
  std::string payload(static_cast<std::size_t>(payload_bytes), '\0');
  in.read(meta_text.data(), meta_bytes);
  in.read(payload.data(), payload_bytes);
  const auto got = in.gcount();
  if (!in || got != payload_bytes) {
    throw CheckpointError(fmt::format("{}: truncated checkpoint (expected {} bytes of data after "
                                      "the header; the file is incomplete)",
                                      path, meta_bytes + payload_bytes));
  }
  Sha256 h;
  h.update(meta_text);
  h.update(payload);
  if (h.hex() != checksum) {
    throw CheckpointError(path + ": corrupted checkpoint (SHA-256 of its contents does not "
                          "match the header)");
  }
  RawCheckpoint raw;
  try {
    raw.meta = nlohmann::json::parse(meta_text);
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(path + ": unreadable checkpoint header: " + e.what());
  }
  if (with_payload) raw.payload = std::move(payload);
  return raw;
}

}  // namespace

std::string weights_sha256(Recommender& model) {
  std::map<std::string, torch::Tensor> sorted;
  for (const auto& p : model->named_parameters()) sorted.emplace(p.key(), p.value());
  Sha256 h;
  for (const auto& [name, tensor] : sorted) {
    const auto t = tensor.detach().to(torch::kCPU).contiguous();
    h.update(name);
    h.update(std::string(c10::toString(t.scalar_type())));
    for (const auto s : t.sizes()) h.update(std::to_string(s) + ",");
    h.update(t.data_ptr(), static_cast<std::size_t>(t.nbytes()));
  }
  return h.hex();
}

std::string optimizer_sha256(Recommender& model, torch::optim::Optimizer& optimizer) {
  // Parameters in registration order; Adam's per-parameter state is keyed by the tensor's
  // implementation pointer in LibTorch 1.13.
  Sha256 h;
  auto& state = optimizer.state();
  for (const auto& p : model->parameters()) {
    const auto it = state.find(c10::guts::to_string(p.unsafeGetTensorImpl()));
    if (it == state.end()) {
      h.update("-");
      continue;
    }
    if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(it->second.get())) {
      h.update(std::to_string(adam->step()));
      for (const auto& t : {adam->exp_avg(), adam->exp_avg_sq()}) {
        const auto c = t.detach().to(torch::kCPU).contiguous();
        h.update(c.data_ptr(), static_cast<std::size_t>(c.nbytes()));
      }
    }
  }
  return h.hex();
}

void save_checkpoint(const std::string& path, Recommender& model,
                     const CheckpointContents& contents) {
  nlohmann::json meta = contents.meta;
  if (contents.optimizer) meta["optimizer_sha256"] = optimizer_sha256(model, *contents.optimizer);
  meta["format_version"] = kCheckpointFormatVersion;
  meta["attnrec_version"] = ATTNREC_VERSION;
  meta["weights_sha256"] = weights_sha256(model);
  nlohmann::json shapes = nlohmann::json::object();
  std::int64_t parameters = 0;
  for (const auto& p : model->named_parameters()) {
    shapes[p.key()] = p.value().sizes().vec();
    parameters += p.value().numel();
  }
  meta["parameter_shapes"] = shapes;
  meta["parameters"] = parameters;

  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive;
  model->save(model_archive);
  archive.write("model", model_archive);
  if (contents.optimizer) {
    torch::serialize::OutputArchive optimizer_archive;
    contents.optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  if (contents.rng) {
    auto cpu = at::detail::getDefaultCPUGenerator();
    {
      std::lock_guard<std::mutex> lock(cpu.mutex());
      archive.write("rng_cpu", cpu.get_state());
    }
    // CUDA generators (dropout on the GPU draws from these), one per visible device.
    const auto devices = torch::cuda::is_available() ? torch::cuda::device_count() : 0;
    for (std::size_t i = 0; i < devices; ++i) {
      auto gen = at::globalContext().defaultGenerator(
          at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(i)));
      std::lock_guard<std::mutex> lock(gen.mutex());
      archive.write("rng_cuda_" + std::to_string(i), gen.get_state());
    }
  }
  // The payload is streamed to the file (a checkpoint held in memory would add its whole size
  // to the trainer's peak memory). Its size and hash are known only at the end, so line 2 is
  // written with a fixed-width placeholder and rewritten in place; readers parse the
  // zero-padded size as the plain number.
  const std::string meta_text = meta.dump();
  auto sizes_line = [&](std::uint64_t payload_bytes, const std::string& hash) {
    return fmt::format("{} {:020d} {}\n", meta_text.size(), payload_bytes, hash);
  };
  AtomicFileWriter out(path, "checkpoint");
  out.write(fmt::format("{} {}\n", kMagic, kCheckpointFormatVersion));
  const std::uint64_t sizes_at = out.size();
  out.write(sizes_line(0, std::string(64, '0')));
  out.write(meta_text);
  Sha256 h;
  h.update(meta_text);
  std::uint64_t payload_bytes = 0;
  archive.save_to([&](const void* data, std::size_t n) -> std::size_t {
    out.write(std::string_view(static_cast<const char*>(data), n));
    h.update(data, n);
    payload_bytes += n;
    return n;
  });
  out.overwrite(sizes_at, sizes_line(payload_bytes, h.hex()));
  out.commit();
}

nlohmann::json read_checkpoint_meta(const std::string& path) {
  return read_raw(path, /*with_payload=*/false).meta;
}

void load_checkpoint_state(const std::string& path, Recommender& model,
                           torch::optim::Optimizer* optimizer, bool restore_rng) {
  const RawCheckpoint raw = read_raw(path, /*with_payload=*/true);
  torch::serialize::InputArchive archive;
  try {
    std::istringstream payload(raw.payload);
    archive.load_from(payload);
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    model->load(model_archive);
    if (optimizer) {
      torch::serialize::InputArchive optimizer_archive;
      if (!archive.try_read("optimizer", optimizer_archive)) {
        throw CheckpointError(path + ": holds no optimizer state; it cannot be resumed from");
      }
      optimizer->load(optimizer_archive);
    }
    if (restore_rng) {
      torch::Tensor state;
      if (!archive.try_read("rng_cpu", state)) {
        throw CheckpointError(path + ": holds no generator state; it cannot be resumed from");
      }
      auto cpu = at::detail::getDefaultCPUGenerator();
      {
        std::lock_guard<std::mutex> lock(cpu.mutex());
        cpu.set_state(state);
      }
      const auto devices = torch::cuda::is_available() ? torch::cuda::device_count() : 0;
      for (std::size_t i = 0; i < devices; ++i) {
        torch::Tensor cuda_state;
        if (!archive.try_read("rng_cuda_" + std::to_string(i), cuda_state)) continue;
        auto gen = at::globalContext().defaultGenerator(
            at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(i)));
        std::lock_guard<std::mutex> lock(gen.mutex());
        gen.set_state(cuda_state);
      }
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

Vocab load_referenced_vocab(const std::string& checkpoint, const nlohmann::json& meta,
                            const std::string& which) {
  const auto& ref = meta.at("vocab").at(which);
  const auto file = fs::absolute(checkpoint).parent_path() / ref.at("file").get<std::string>();
  const auto shown = file.lexically_normal().string();
  const std::string name = which == "items" ? "item" : "user";
  if (!fs::exists(file)) {
    throw CheckpointError(checkpoint + ": its " + name + " vocabulary " + shown +
                          " is missing (a checkpoint needs the vocabulary files of its run "
                          "directory; copy the whole run directory)");
  }
  const auto text = read_file(file.string());
  if (sha256_hex(text) != ref.at("sha256").get<std::string>()) {
    throw CheckpointError(checkpoint + ": the " + name + " vocabulary " + shown +
                          " has changed since the checkpoint was written (SHA-256 differs)");
  }
  return Vocab::from_text(text, shown);
}

std::string resolve_checkpoint_path(const std::string& path) {
  if (!fs::exists(path)) throw CheckpointError(path + ": no such checkpoint or run directory");
  if (!fs::is_directory(path)) return path;
  for (const char* name : {"checkpoints/best.pt", "checkpoints/final.pt"}) {
    const auto candidate = fs::path(path) / name;
    if (fs::exists(candidate)) return candidate.string();
  }
  const auto latest = fs::path(path) / "checkpoints" / "latest";
  if (fs::exists(latest)) {
    const auto name = read_file(latest.string());
    return (fs::path(path) / "checkpoints" / name.substr(0, name.find('\n'))).string();
  }
  throw CheckpointError(path + ": a directory without checkpoints (checkpoints/best.pt, "
                        "final.pt or latest); pass a run directory or a checkpoint file");
}

LoadedModel load_model(const std::string& path, const torch::Device& device) {
  LoadedModel loaded;
  loaded.checkpoint_path = resolve_checkpoint_path(path);
  const auto& ckpt = loaded.checkpoint_path;
  loaded.meta = read_checkpoint_meta(ckpt);
  try {
    loaded.config = config_from_json(loaded.meta.at("config"), ckpt + " (stored config)");
    loaded.items = load_referenced_vocab(ckpt, loaded.meta, "items");
    loaded.users = load_referenced_vocab(ckpt, loaded.meta, "users");
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(ckpt + ": incomplete checkpoint header: " + e.what());
  }
  // The item -> category map is a model buffer, restored with the weights.
  loaded.model = build_recommender(loaded.config, loaded.items.size(), loaded.users.size(),
                                   loaded.meta.value("category_vocab", std::int64_t{0}));
  load_checkpoint_state(ckpt, loaded.model, nullptr, false);
  loaded.model->to(device);
  loaded.model->eval();
  return loaded;
}

}  // namespace attnrec
