#include "attnrec/io/safetensors.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"

namespace attnrec {

namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors stores little-endian data; this host is big-endian");

/// Header size limit of the reference implementation (100 MB): a larger one is not a header.
constexpr std::uint64_t kMaxHeader = 100'000'000;

struct DtypeName {
  torch::ScalarType type;
  const char* name;
};

constexpr DtypeName kDtypes[] = {{torch::kFloat32, "F32"}, {torch::kFloat64, "F64"},
                                 {torch::kFloat16, "F16"}, {torch::kBFloat16, "BF16"},
                                 {torch::kInt64, "I64"},   {torch::kInt32, "I32"},
                                 {torch::kInt16, "I16"},   {torch::kInt8, "I8"},
                                 {torch::kUInt8, "U8"},    {torch::kBool, "BOOL"}};

const char* dtype_name(torch::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (d.type == type) return d.name;
  }
  throw UsageError(fmt::format("safetensors: no dtype name for {}", c10::toString(type)));
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<NamedTensor> sorted = tensors;
  std::sort(sorted.begin(), sorted.end(),
            [](const NamedTensor& a, const NamedTensor& b) { return a.name < b.name; });
  nlohmann::json header = nlohmann::json::object();
  std::vector<torch::Tensor> data;
  std::uint64_t offset = 0;
  for (const auto& t : sorted) {
    TORCH_CHECK(t.name != "__metadata__" && !header.contains(t.name),
                "safetensors: expected unique tensor names, got \"", t.name, "\" twice");
    const auto cpu = t.tensor.detach().to(torch::kCPU).contiguous();
    const auto bytes = static_cast<std::uint64_t>(cpu.numel()) * cpu.element_size();
    header[t.name] = {{"dtype", dtype_name(cpu.scalar_type())},
                      {"shape", cpu.sizes().vec()},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(cpu);
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const std::uint64_t size = text.size();
  char length[8];
  std::memcpy(length, &size, 8);
  AtomicFileWriter out(path, "safetensors file");
  out.write(std::string_view(length, 8));
  out.write(text);
  for (const auto& d : data) {
    out.write(std::string_view(static_cast<const char*>(d.data_ptr()),
                               static_cast<std::size_t>(d.numel()) * d.element_size()));
  }
  out.commit();
}

SafetensorsFile read_safetensors(const std::string& path) {
  const std::string bytes = read_file(path);
  const auto fail = [&](const std::string& why) {
    return CheckpointError(path + ": not a valid safetensors file: " + why);
  };
  if (bytes.size() < 8) throw fail("shorter than its 8-byte header length");
  std::uint64_t size = 0;
  std::memcpy(&size, bytes.data(), 8);
  if (size > kMaxHeader || size > bytes.size() - 8) {
    throw fail(fmt::format("header length {} exceeds the file ({} bytes)", size, bytes.size()));
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.substr(8, size));
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("header is not JSON: ") + e.what());
  }
  if (!header.is_object()) throw fail("header is not a JSON object");
  const std::uint64_t data_size = bytes.size() - 8 - size;
  const char* data = bytes.data() + 8 + size;
  SafetensorsFile out;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw fail("__metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) throw fail("__metadata__." + k + " is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    try {
      const auto dtype = entry.at("dtype").get<std::string>();
      const auto* d = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                                   [&](const DtypeName& x) { return dtype == x.name; });
      if (d == std::end(kDtypes)) throw fail(name + ": unsupported dtype " + dtype);
      const auto shape = entry.at("shape").get<std::vector<std::int64_t>>();
      const auto offsets = entry.at("data_offsets").get<std::vector<std::uint64_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size) {
        throw fail(name + ": data_offsets outside the data");
      }
      std::uint64_t numel = 1;
      for (const auto s : shape) {
        if (s < 0) throw fail(name + ": negative dimension");
        numel *= static_cast<std::uint64_t>(s);
      }
      const auto element = static_cast<std::uint64_t>(c10::elementSize(d->type));
      if (numel * element != offsets[1] - offsets[0]) {
        throw fail(fmt::format("{}: shape needs {} bytes, data_offsets give {}", name,
                               numel * element, offsets[1] - offsets[0]));
      }
      auto t = torch::empty(shape, torch::TensorOptions().dtype(d->type));
      // An empty tensor has no storage (data_ptr() is null): memcpy must not see it (UBSan).
      if (offsets[1] > offsets[0]) {
        std::memcpy(t.data_ptr(), data + offsets[0], offsets[1] - offsets[0]);
      }
      out.tensors.push_back({name, t});
      spans.emplace_back(offsets[0], offsets[1]);
    } catch (const nlohmann::json::exception& e) {
      throw fail(name + ": " + e.what());
    }
  }
  // The tensors in data order; their bytes must cover the data exactly.
  std::vector<std::size_t> order(spans.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return spans[a] < spans[b]; });
  std::uint64_t at = 0;
  std::vector<NamedTensor> ordered;
  for (const auto i : order) {
    if (spans[i].first != at) throw fail("tensor data has gaps or overlaps");
    at = spans[i].second;
    ordered.push_back(out.tensors[i]);
  }
  if (at != data_size) throw fail("bytes after the last tensor");
  out.tensors = std::move(ordered);
  return out;
}

}  // namespace attnrec
