#include "attnrec/config/variants.hpp"

namespace attnrec {

const std::vector<VariantInfo>& attention_variants() {
  static const std::vector<VariantInfo> v = {
      {"dot", "score = q . h_t"},
      {"scaled_dot", "score = q . h_t / sqrt(d)"},
      {"additive", "Bahdanau/MLP: score = v . tanh(W_h h_t + W_q q)"},
      {"cosine", "score = cos(q, h_t) / temperature (temperature 0.1, fixed)"},
      {"multi_head", "scaled dot product in `model.attention.heads` heads, outputs concatenated"},
      {"none", "no attention: masked mean of the encoder outputs (the pooling baseline)"},
  };
  return v;
}

const std::vector<VariantInfo>& encoder_variants() {
  static const std::vector<VariantInfo> v = {
      {"lstm", "LSTM over the history (padding masked, never seen by attention)"},
      {"gru", "GRU over the history"},
      {"none", "attention directly over the item embeddings (DIN-style)"},
  };
  return v;
}

const std::vector<VariantInfo>& query_variants() {
  static const std::vector<VariantInfo> v = {
      {"target", "the candidate item's embedding, projected to the encoder size (DIN-style)"},
      {"self", "a learned query vector (sequence-only tasks without a candidate)"},
  };
  return v;
}

const std::vector<VariantInfo>& positional_variants() {
  static const std::vector<VariantInfo> v = {
      {"none", "no positional information beyond what the encoder carries"},
      {"sinusoidal", "fixed sine/cosine encoding added to the encoder outputs"},
      {"learned", "a learned vector per position added to the encoder outputs"},
  };
  return v;
}

const std::vector<VariantInfo>& activation_variants() {
  static const std::vector<VariantInfo> v = {
      {"relu", "max(0, x)"},
      {"gelu", "Gaussian error linear unit"},
      {"tanh", "hyperbolic tangent"},
      {"sigmoid", "logistic function"},
  };
  return v;
}

std::vector<std::string> variant_names(const std::vector<VariantInfo>& variants) {
  std::vector<std::string> names;
  names.reserve(variants.size());
  for (const auto& v : variants) names.push_back(v.name);
  return names;
}

std::string variant_docs(const std::vector<VariantInfo>& variants) {
  std::string out;
  for (const auto& v : variants) out += "  - `" + v.name + "`: " + v.help + "\n";
  return out;
}

}  // namespace attnrec
