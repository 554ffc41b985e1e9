#pragma once
/// \file TensorBoard event files: RUN/tb/events.out.tfevents.<seconds>.<host>.
///
/// The format TensorBoard reads: TFRecord framing (uint64 length, masked CRC-32C of the
/// length, the record, masked CRC-32C of the record; little-endian) around `Event` protocol
/// buffers. Only three messages are needed (tensorflow/core/util/event.proto, summary.proto):
///   Event      { double wall_time = 1; int64 step = 2; string file_version = 3;
///                Summary summary = 5; SessionLog session_log = 6; }
///   Summary    { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
///   SessionLog { SessionStatus status = 1; }  (START = 1)
/// and they are encoded here by hand (varints, fixed64/fixed32, length-delimited fields), which
/// keeps protoc and a .proto build step out of the project; TensorBoard's own reader checks the
/// result in the tests.

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>

namespace attnrec {

/// Appends scalar events to one new event file in `dir` (created if missing). The first records
/// are the file version and a SessionLog START at `first_step`, which makes TensorBoard drop
/// the events of earlier files with a later step (those of a run segment that was resumed from
/// an earlier checkpoint). Each scalar is flushed to the file at once.
class EventWriter {
 public:
  EventWriter(const std::string& dir, std::int64_t first_step);
  void scalar(const std::string& tag, double value, std::int64_t step);
  const std::string& path() const { return path_; }

 private:
  void record(std::string_view event);
  std::string path_;
  std::ofstream out_;
};

/// The TFRecord frame of one record (exposed for tests).
std::string tfrecord_frame(std::string_view record);

}  // namespace attnrec
