#include "attnrec/util/device_spec.hpp"

namespace attnrec {

std::optional<DeviceSpec> parse_device_spec(std::string_view text) {
  DeviceSpec spec;
  if (text == "auto") return spec;
  if (text == "cpu") {
    spec.kind = DeviceSpec::Kind::cpu;
    return spec;
  }
  if (text.substr(0, 4) != "cuda") return std::nullopt;
  spec.kind = DeviceSpec::Kind::cuda;
  if (text.size() == 4) return spec;
  const std::string_view digits = text.substr(5);
  // At most four digits: the value is bounded before it is converted.
  if (text[4] != ':' || digits.empty() || digits.size() > 4) return std::nullopt;
  int index = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    index = index * 10 + (c - '0');
  }
  if (index > kMaxCudaIndex) return std::nullopt;
  spec.index = index;
  spec.explicit_index = true;
  return spec;
}

std::string quote_for_message(std::string_view text) {
  if (text.size() <= 40) return "\"" + std::string(text) + "\"";
  return "\"" + std::string(text.substr(0, 40)) + "...\" (" + std::to_string(text.size()) +
         " characters)";
}

}  // namespace attnrec
