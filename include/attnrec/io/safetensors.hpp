#pragma once
/// \file The safetensors format (https://github.com/huggingface/safetensors): an 8-byte
/// little-endian header length, a JSON header (per tensor: dtype, shape, data offsets; an
/// optional "__metadata__" map of strings), padded with spaces to a multiple of 8, then the raw
/// little-endian tensor bytes. The interchange format of `attnrec export`.

#include <torch/torch.h>
#include <map>
#include <string>
#include <vector>

namespace attnrec {

/// A tensor and its name (a PyTorch state_dict key).
struct NamedTensor {
  std::string name;
  torch::Tensor tensor;
};

/// Writes `tensors` (any device; copied to contiguous CPU memory) and `metadata` to `path`
/// atomically. Names must be unique and must not be "__metadata__".
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata);

/// The contents of a safetensors file: its tensors (in the order of their data) and metadata.
struct SafetensorsFile {
  std::vector<NamedTensor> tensors;
  std::map<std::string, std::string> metadata;
};

/// Reads and checks a safetensors file (header size, JSON, dtypes, shapes against offsets,
/// offsets covering the data without gaps or overlaps); a malformed file is a CheckpointError
/// naming it.
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace attnrec
