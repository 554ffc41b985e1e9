#include "attnrec/io/tensorboard.hpp"

#include <fmt/format.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/hash.hpp"

namespace attnrec {

namespace {

void varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

template <class T>
void fixed(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));  // little-endian hosts (as the safetensors writer checks)
  out.append(bytes, sizeof(T));
}

/// Field key: number << 3 | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
void key(std::string& out, int field, int wire) {
  varint(out, static_cast<std::uint64_t>(field << 3 | wire));
}

void bytes_field(std::string& out, int field, std::string_view value) {
  key(out, field, 2);
  varint(out, value.size());
  out.append(value);
}

/// An Event with its wall time and step; `what` is its remaining fields, already encoded.
std::string event(std::int64_t step, const std::string& what) {
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string e;
  key(e, 1, 1);
  fixed(e, now);
  key(e, 2, 0);
  varint(e, static_cast<std::uint64_t>(step));
  return e + what;
}

std::uint32_t masked_crc(std::string_view data) {
  const std::uint32_t crc = crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string host_name() {
  char name[256] = {0};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

}  // namespace

std::string tfrecord_frame(std::string_view record) {
  std::string out, length;
  fixed(length, static_cast<std::uint64_t>(record.size()));
  out += length;
  fixed(out, masked_crc(length));
  out.append(record);
  fixed(out, masked_crc(record));
  return out;
}

EventWriter::EventWriter(const std::string& dir, std::int64_t first_step) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  // A resumed segment started within the same second gets its own file too.
  for (int n = 0;; ++n) {
    path_ = fmt::format("{}/events.out.tfevents.{}.{}{}", dir, seconds, host_name(),
                        n == 0 ? std::string() : fmt::format(".{}", n));
    if (!std::filesystem::exists(path_)) break;
  }
  out_.open(path_, std::ios::binary);
  if (!out_) throw IoError(path_ + ": cannot create the TensorBoard event file");
  std::string version;
  bytes_field(version, 3, "brain.Event:2");
  record(event(first_step, version));
  std::string start, session;
  key(session, 1, 0);
  varint(session, 1);  // SessionLog.START
  bytes_field(start, 6, session);
  record(event(first_step, start));
}

void EventWriter::scalar(const std::string& tag, double value, std::int64_t step) {
  std::string v;
  bytes_field(v, 1, tag);
  key(v, 2, 5);
  fixed(v, static_cast<float>(value));
  std::string summary;
  bytes_field(summary, 1, v);
  std::string what;
  bytes_field(what, 5, summary);
  record(event(step, what));
}

void EventWriter::record(std::string_view event) {
  const std::string frame = tfrecord_frame(event);
  errno = 0;
  out_.write(frame.data(), static_cast<std::streamsize>(frame.size()));
  out_.flush();
  if (!out_) throw IoError(path_ + ": cannot write the TensorBoard event file" + errno_reason());
}

}  // namespace attnrec
