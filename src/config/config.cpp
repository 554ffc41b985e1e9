#include "attnrec/config/config.hpp"

#include <algorithm>

namespace attnrec {

std::int64_t item_representation_size(const ModelConfig& model) {
  return model.embedding.dim + (model.embedding.category ? model.embedding.category_dim : 0);
}

std::int64_t encoder_output_size(const ModelConfig& model) {
  if (model.encoder.type == EncoderKind::none || model.encoder.type == EncoderKind::transformer) {
    return item_representation_size(model);
  }
  return model.encoder.hidden * (model.encoder.bidirectional ? 2 : 1);
}

bool has_column(const DataConfig& data, const std::string& role) {
  return std::find(data.columns.begin(), data.columns.end(), role) != data.columns.end();
}

}  // namespace attnrec
