#pragma once
/// \file Device strings ("auto", "cpu", "cuda", "cuda:N"), parsed by attnrec before LibTorch sees
/// them (LibTorch's own parser is not made for untrusted text).

#include <optional>
#include <string>
#include <string_view>

namespace attnrec {

struct DeviceSpec {
  enum class Kind { automatic, cpu, cuda };
  Kind kind = Kind::automatic;
  int index = 0;                ///< CUDA device index (cuda:N); 0 for "cuda"
  bool explicit_index = false;  ///< written as cuda:N
};

/// Largest accepted N in "cuda:N".
constexpr int kMaxCudaIndex = 1023;

/// The parsed spec, or nullopt when `text` is not auto, cpu, cuda or cuda:N (N in 0..1023).
std::optional<DeviceSpec> parse_device_spec(std::string_view text);

/// `text` quoted for an error message, cut to its first 40 characters when longer.
std::string quote_for_message(std::string_view text);

}  // namespace attnrec
