#include "attnrec/config/config.hpp"

#include <algorithm>

namespace attnrec {

std::int64_t encoder_output_size(const ModelConfig& model) {
  if (model.encoder.type == "none") return model.embedding.dim;
  return model.encoder.hidden * (model.encoder.bidirectional ? 2 : 1);
}

bool has_column(const DataConfig& data, const std::string& role) {
  return std::find(data.columns.begin(), data.columns.end(), role) != data.columns.end();
}

}  // namespace attnrec
