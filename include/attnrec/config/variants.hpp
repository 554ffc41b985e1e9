#pragma once
/// \file Registry of model variants (attention scoring functions, encoders, query kinds,
/// positional encodings, head activations). Config validation and the option reference take
/// their allowed values and descriptions from here, so a variant added to the registry is
/// immediately valid in configs and documented.

#include <string>
#include <vector>

namespace attnrec {

/// A named variant and its one-line description.
struct VariantInfo {
  std::string name;
  std::string help;
};

const std::vector<VariantInfo>& attention_variants();
const std::vector<VariantInfo>& encoder_variants();
const std::vector<VariantInfo>& query_variants();
const std::vector<VariantInfo>& positional_variants();
const std::vector<VariantInfo>& activation_variants();

/// The names of `variants`, in registry order.
std::vector<std::string> variant_names(const std::vector<VariantInfo>& variants);

/// "name: help" lines as a Markdown list, for the option reference.
std::string variant_docs(const std::vector<VariantInfo>& variants);

}  // namespace attnrec
