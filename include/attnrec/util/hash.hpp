#pragma once
/// \file SHA-256 (OpenSSL's libcrypto) for content hashes of vocabularies, checkpoints and
/// model weights.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace attnrec {

/// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  /// Lower-case hex digest; the object cannot be updated afterwards.
  std::string hex();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// SHA-256 of `data` as lower-case hex.
std::string sha256_hex(std::string_view data);

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `data`, as TFRecord framing uses it.
std::uint32_t crc32c(std::string_view data);

/// SHA-256 of a file's bytes, read in blocks (memory does not grow with the file). Throws
/// IoError naming the path when it cannot be read.
std::string sha256_file(const std::string& path);

/// True for exactly 64 lower-case hex digits (a SHA-256 as sha256_hex() writes it).
bool is_sha256_hex(std::string_view text);

}  // namespace attnrec
