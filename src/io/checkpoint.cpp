#include "attnrec/io/checkpoint.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "attnrec/config/fields.hpp"
#include "attnrec/model/factory.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/hash.hpp"
#include "attnrec/util/strings.hpp"
#include "attnrec/util/torch_compat.hpp"

namespace attnrec {

namespace fs = std::filesystem;

namespace {

constexpr const char* kMagic = "ATTNREC-CHECKPOINT";

/// The parts of a checkpoint file after verification.
struct RawCheckpoint {
  nlohmann::json meta;
  std::string payload;
};

/// Reads one line of at most `limit` bytes (the header lines are short; a file that is not a
/// checkpoint must not make us read it whole looking for a newline).
bool read_short_line(std::istream& in, std::string& line, std::size_t limit) {
  line.clear();
  char c = 0;
  while (line.size() <= limit && in.get(c)) {
    if (c == '\n') return true;
    line.push_back(c);
  }
  return false;
}

RawCheckpoint read_raw(const std::string& path, bool with_payload) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw CheckpointError(path + ": checkpoint not found");
  if (!fs::is_regular_file(path, ec)) {
    throw CheckpointError(path +
                          ": not a regular file; pass a checkpoint file or a run "
                          "directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckpointError(path + ": cannot open checkpoint");
  const std::uint64_t file_bytes = file_size(path);
  std::string magic_line, sizes_line;
  const bool magic_ok = read_short_line(in, magic_line, 64);
  std::istringstream magic(magic_line);
  std::string word;
  std::int64_t format = -1;
  magic >> word >> format;
  if (!magic_ok || word != kMagic) {
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
  // Exactly "<digits> <digits> <64 lower-case hex digits>": anything else was not written by
  // save_checkpoint().
  const bool sizes_ok = read_short_line(in, sizes_line, 128);
  std::vector<std::string_view> fields;
  split(sizes_line, ' ', fields);
  const auto digits = [](std::string_view f) {
    return !f.empty() && f.size() <= 20 && f.find_first_not_of("0123456789") == f.npos;
  };
  std::int64_t meta_bytes = -1, payload_bytes = -1;
  const bool well_formed = sizes_ok && fields.size() == 3 && digits(fields[0]) &&
                           digits(fields[1]) && is_sha256_hex(fields[2]) &&
                           parse_int64(fields[0], meta_bytes) &&
                           parse_int64(fields[1], payload_bytes) && meta_bytes > 0;
  if (!well_formed) throw CheckpointError(path + ": corrupted checkpoint header (line 2)");
  const std::string checksum(fields[2]);
  // The sizes are checked against the file before anything is allocated from them.
  const auto header_bytes = static_cast<std::uint64_t>(in.tellg());
  const std::uint64_t body = file_bytes - std::min(file_bytes, header_bytes);
  const auto claimed =
      static_cast<std::uint64_t>(meta_bytes) + static_cast<std::uint64_t>(payload_bytes);
  if (claimed > body) {
    throw CheckpointError(
        fmt::format("{}: truncated checkpoint (its header announces {} bytes "
                    "of data, the file holds {}; the file is incomplete)",
                    path, claimed, body));
  }
  if (claimed < body) {
    throw CheckpointError(
        fmt::format("{}: corrupted checkpoint ({} bytes after the data its "
                    "header announces)",
                    path, body - claimed));
  }
  std::string meta_text(static_cast<std::size_t>(meta_bytes), '\0');
  std::string payload(static_cast<std::size_t>(payload_bytes), '\0');
  in.read(meta_text.data(), meta_bytes);
  in.read(payload.data(), payload_bytes);
  if (!in || in.gcount() != payload_bytes) {
    throw CheckpointError(path + ": truncated checkpoint (the file changed while it was read)");
  }
  Sha256 h;
  h.update(meta_text);
  h.update(payload);
  if (h.hex() != checksum) {
    throw CheckpointError(path +
                          ": corrupted checkpoint (SHA-256 of its contents does not "
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

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

nlohmann::json vocab_reference(const std::string& checkpoint_path, const std::string& vocab_path) {
  const auto base = fs::absolute(checkpoint_path).parent_path();
  return {{"file", fs::relative(fs::absolute(vocab_path), base).string()},
          {"sha256", sha256_hex(read_file(vocab_path))}};
}

}  // namespace

nlohmann::json CheckpointMeta::to_json() const {
  nlohmann::json shapes = nlohmann::json::object();
  for (const auto& [name, shape] : parameter_shapes) shapes[name] = shape;
  nlohmann::json j = {
      {"kind", kind},
      {"format_version", format_version},
      {"attnrec_version", attnrec_version},
      {"libtorch_version", libtorch_version},
      {"config", config_to_json(config)},
      {"train_state", train_state.to_json()},
      {"category_vocab", category_vocab},
      {"metrics", metrics},
      {"vocab",
       {{"items", {{"file", items.file}, {"sha256", items.sha256}}},
        {"users", {{"file", users.file}, {"sha256", users.sha256}}}}},
      {"weights_sha256", weights_sha256},
      {"parameter_shapes", shapes},
      {"parameters", parameters},
  };
  if (!optimizer_sha256.empty()) j["optimizer_sha256"] = optimizer_sha256;
  if (!train_data_sha256.empty()) j["train_data_sha256"] = train_data_sha256;
  if (!distributed.is_null()) j["distributed"] = distributed;
  return j;
}

int CheckpointMeta::world_size() const {
  return distributed.is_null() ? 1 : distributed.at("world_size").get<int>();
}

CheckpointMeta CheckpointMeta::from_json(const nlohmann::json& j, const std::string& path) {
  CheckpointMeta m;
  const std::string stored = path + " (stored config)";
  try {
    if (!j.is_object()) throw std::invalid_argument("not a JSON object");
    m.kind = j.at("kind").get<std::string>();
    if (m.kind != "periodic" && m.kind != "best" && m.kind != "final") {
      throw std::invalid_argument("kind: expected periodic, best or final, got \"" + m.kind + "\"");
    }
    m.format_version = j.at("format_version").get<std::int64_t>();
    m.attnrec_version = j.at("attnrec_version").get<std::string>();
    m.libtorch_version = j.value("libtorch_version", std::string());
    m.train_state = TrainState::from_json(j.at("train_state"));
    m.category_vocab = j.value("category_vocab", std::int64_t{0});
    if (m.category_vocab < 0 || m.category_vocab > (std::int64_t{1} << 40)) {
      throw std::invalid_argument("category_vocab: out of range");
    }
    m.metrics = j.value("metrics", nlohmann::json::object());
    if (!m.metrics.is_object()) throw std::invalid_argument("metrics: not an object");
    for (const char* which : {"items", "users"}) {
      const auto& ref = j.at("vocab").at(which);
      VocabReference& r = std::string(which) == "items" ? m.items : m.users;
      r.file = ref.at("file").get<std::string>();
      r.sha256 = ref.at("sha256").get<std::string>();
    }
    m.weights_sha256 = j.at("weights_sha256").get<std::string>();
    m.optimizer_sha256 = j.value("optimizer_sha256", std::string());
    m.train_data_sha256 = j.value("train_data_sha256", std::string());
    if (!m.train_data_sha256.empty() && !is_sha256_hex(m.train_data_sha256)) {
      throw std::invalid_argument("train_data_sha256: expected 64 lower-case hex digits");
    }
    if (j.contains("distributed")) {
      m.distributed = j.at("distributed");
      const auto world = m.distributed.at("world_size").get<std::int64_t>();
      if (world < 1 || world > 65536) {
        throw std::invalid_argument("distributed/world_size: expected 1 to 65536");
      }
    }
    for (const auto& [name, shape] : j.at("parameter_shapes").items()) {
      auto dims = shape.get<std::vector<std::int64_t>>();
      for (const auto d : dims) {
        if (d < 0) throw std::invalid_argument("parameter_shapes/" + name + ": negative size");
      }
      m.parameter_shapes.emplace(name, std::move(dims));
    }
    m.parameters = j.at("parameters").get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(path + ": incomplete or malformed checkpoint header: " + e.what());
  } catch (const std::invalid_argument& e) {
    throw CheckpointError(path + ": malformed checkpoint header: " + e.what());
  }
  if (!j.contains("config")) throw CheckpointError(path + ": checkpoint header has no config");
  m.config = config_from_json(j.at("config"), stored);
  return m;
}

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
  // implementation pointer (see compat::optimizer_state_key).
  Sha256 h;
  auto& state = optimizer.state();
  for (const auto& p : model->parameters()) {
    const auto it = state.find(compat::optimizer_state_key(p));
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
  CheckpointMeta m;
  m.kind = contents.kind;
  m.attnrec_version = ATTNREC_VERSION;
  m.libtorch_version = compat::torch_version();
  m.config = *contents.config;
  m.train_state = contents.train_state;
  m.category_vocab = model->options.category_vocab();
  m.metrics = contents.metrics;
  m.distributed = contents.distributed;
  m.train_data_sha256 = contents.train_data_sha256;
  const auto items = vocab_reference(path, contents.items_vocab);
  const auto users = vocab_reference(path, contents.users_vocab);
  m.items = {items["file"], items["sha256"]};
  m.users = {users["file"], users["sha256"]};
  if (contents.optimizer) m.optimizer_sha256 = optimizer_sha256(model, *contents.optimizer);
  m.weights_sha256 = weights_sha256(model);
  for (const auto& p : model->named_parameters()) {
    m.parameter_shapes[p.key()] = p.value().sizes().vec();
    m.parameters += p.value().numel();
  }
  const nlohmann::json meta = m.to_json();

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

CheckpointMeta read_checkpoint_meta(const std::string& path) {
  return CheckpointMeta::from_json(read_raw(path, /*with_payload=*/false).meta, path);
}

void check_parameter_shapes(const std::string& path, const CheckpointMeta& meta,
                            Recommender& model) {
  std::map<std::string, std::vector<std::int64_t>> built;
  for (const auto& p : model->named_parameters()) built[p.key()] = p.value().sizes().vec();
  for (const auto& [name, shape] : built) {
    const auto it = meta.parameter_shapes.find(name);
    if (it == meta.parameter_shapes.end()) {
      throw CheckpointError(path + ": its stored config builds a parameter " + name +
                            " that the checkpoint does not hold; the header was changed");
    }
    if (it->second != shape) {
      throw CheckpointError(path + ": parameter " + name + ": the stored config builds shape " +
                            shape_text(shape) + " but the checkpoint holds " +
                            shape_text(it->second) + "; the header was changed");
    }
  }
  for (const auto& [name, shape] : meta.parameter_shapes) {
    if (!built.count(name)) {
      throw CheckpointError(path + ": holds a parameter " + name + " " + shape_text(shape) +
                            " that its stored config does not build; the header was changed");
    }
  }
}

namespace {

/// Shapes and types of every parameter and buffer, to compare after loading (LibTorch's
/// archive reader replaces a tensor whatever its shape).
std::map<std::string, std::pair<std::vector<std::int64_t>, c10::ScalarType>> tensor_layout(
    Recommender& model) {
  std::map<std::string, std::pair<std::vector<std::int64_t>, c10::ScalarType>> out;
  for (const auto& p : model->named_parameters()) {
    out[p.key()] = {p.value().sizes().vec(), p.value().scalar_type()};
  }
  for (const auto& b : model->named_buffers()) {
    out["buffer " + b.key()] = {b.value().sizes().vec(), b.value().scalar_type()};
  }
  return out;
}

void check_layout_kept(
    const std::string& path, Recommender& model,
    const std::map<std::string, std::pair<std::vector<std::int64_t>, c10::ScalarType>>& expected) {
  const auto got = tensor_layout(model);
  for (const auto& [name, layout] : expected) {
    const auto it = got.find(name);
    if (it == got.end() || it->second != layout) {
      throw CheckpointError(
          path + ": " + name + ": the model expects " + shape_text(layout.first) + " " +
          c10::toString(layout.second) + " but the checkpoint's weights are " +
          (it == got.end()
               ? std::string("missing")
               : shape_text(it->second.first) + " " + c10::toString(it->second.second)));
    }
  }
}

/// Every parameter's Adam moments must have the parameter's shape (the fused kernels index
/// them by the parameter's size).
void check_optimizer_state(const std::string& path, Recommender& model,
                           torch::optim::Optimizer& optimizer) {
  auto& state = optimizer.state();
  for (const auto& p : model->named_parameters()) {
    const auto it = state.find(compat::optimizer_state_key(p.value()));
    if (it == state.end()) continue;
    auto* adam = dynamic_cast<torch::optim::AdamParamState*>(it->second.get());
    if (!adam) continue;
    for (const auto& t : {adam->exp_avg(), adam->exp_avg_sq()}) {
      if (!t.defined() || t.sizes() != p.value().sizes() ||
          t.scalar_type() != p.value().scalar_type()) {
        throw CheckpointError(path + ": optimizer state of " + p.key() +
                              " does not match the parameter's shape " +
                              shape_text(p.value().sizes().vec()));
      }
    }
    if (adam->step() < 0) {
      throw CheckpointError(path + ": optimizer state of " + p.key() + " has a negative step");
    }
  }
}

}  // namespace

void load_checkpoint_state(const std::string& path, Recommender& model,
                           torch::optim::Optimizer* optimizer, bool restore_rng) {
  const RawCheckpoint raw = read_raw(path, /*with_payload=*/true);
  const auto expected = tensor_layout(model);
  // Read onto the CPU, the weights go back to the model's device; the optimizer state follows
  // the model when the trainer moves it (place_optimizer_state).
  const auto params = model->parameters();
  const torch::Device device = params.empty() ? torch::Device(torch::kCPU) : params[0].device();
  torch::serialize::InputArchive archive;
  try {
    // LibTorch's archive reader throws c10::Error, its TorchScript importer an ErrorReport (a
    // std::exception) on a payload it cannot parse: both are a damaged checkpoint. Every tensor
    // is read onto the CPU, whichever device wrote it (a CUDA checkpoint reads without a GPU).
    std::istringstream payload(raw.payload);
    archive.load_from(payload, torch::Device(torch::kCPU));
  } catch (const std::exception& e) {
    const auto* c10 = dynamic_cast<const c10::Error*>(&e);
    throw CheckpointError(path +
                          ": unreadable checkpoint payload (not a LibTorch archive this "
                          "build can read): " +
                          (c10 ? c10->what_without_backtrace() : e.what()));
  }
  try {
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    model->load(model_archive);
    model->to(device);  // LibTorch's reader may rebind a parameter to the archive's device
    check_layout_kept(path, model, expected);
    if (optimizer) {
      torch::serialize::InputArchive optimizer_archive;
      if (!archive.try_read("optimizer", optimizer_archive)) {
        throw CheckpointError(path + ": holds no optimizer state; it cannot be resumed from");
      }
      const auto meta = CheckpointMeta::from_json(raw.meta, path);  // the one meta reader
      const auto& writer = meta.libtorch_version;
      if (!compat::optimizer_state_readable(writer)) {
        throw CheckpointError(fmt::format(
            "{}: its optimizer state was written by LibTorch {}, which this build (LibTorch {}) "
            "cannot read; resume it with an attnrec built against LibTorch {} (the Debian build: "
            "scripts/setup.sh), or use it with evaluate and predict, which read only the weights",
            path, writer.empty() ? "1.13" : writer, compat::torch_version(),
            writer.empty() ? "1.13" : writer));
      }
      optimizer->load(optimizer_archive);
      check_optimizer_state(path, model, *optimizer);
      // The state read back is the state written: a scrambled parameter-to-state mapping
      // (same shapes, wrong parameters) would otherwise go unnoticed.
      if (!meta.optimizer_sha256.empty() &&
          optimizer_sha256(model, *optimizer) != meta.optimizer_sha256) {
        throw CheckpointError(path +
                              ": the optimizer state read back differs from the one "
                              "written (SHA-256 of Adam's moments); it cannot be resumed "
                              "from exactly");
      }
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
  } catch (const std::exception& e) {
    if (dynamic_cast<const Error*>(&e)) throw;
    throw CheckpointError(path + ": unreadable checkpoint payload: " + e.what());
  }
}

Vocab load_referenced_vocab(const std::string& checkpoint, const CheckpointMeta& meta,
                            const std::string& which) {
  const VocabReference& ref = which == "items" ? meta.items : meta.users;
  const auto file = fs::absolute(checkpoint).parent_path() / ref.file;
  const auto shown = file.lexically_normal().string();
  const std::string name = which == "items" ? "item" : "user";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    throw CheckpointError(checkpoint + ": its " + name + " vocabulary " + shown +
                          " is missing (a checkpoint needs the vocabulary files of its run "
                          "directory; copy the whole run directory)");
  }
  const auto text = read_file(file.string());
  if (sha256_hex(text) != ref.sha256) {
    throw CheckpointError(checkpoint + ": the " + name + " vocabulary " + shown +
                          " has changed since the checkpoint was written (SHA-256 differs)");
  }
  return Vocab::from_text(text, shown);
}

LoadedModel load_model(const std::string& path, const torch::Device& device) {
  LoadedModel loaded;
  loaded.checkpoint_path = resolve_checkpoint_path(path);
  const auto& ckpt = loaded.checkpoint_path;
  loaded.meta = read_checkpoint_meta(ckpt);
  loaded.config = loaded.meta.config;
  loaded.items = load_referenced_vocab(ckpt, loaded.meta, "items");
  loaded.users = load_referenced_vocab(ckpt, loaded.meta, "users");
  // The item -> category map is a model buffer, restored with the weights.
  loaded.model = build_recommender(loaded.config, loaded.items.size(), loaded.users.size(),
                                   loaded.meta.category_vocab);
  check_parameter_shapes(ckpt, loaded.meta, loaded.model);
  load_checkpoint_state(ckpt, loaded.model, nullptr, false);
  loaded.model->to(device);
  loaded.model->eval();
  return loaded;
}

}  // namespace attnrec
