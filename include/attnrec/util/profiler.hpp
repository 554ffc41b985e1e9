#pragma once
/// \file A Chrome trace of a stretch of work: LibTorch's Kineto profiler (what torch.profiler
/// runs), with the operators on the host and, on CUDA, the kernels, copies and runtime calls.
/// Open the file in chrome://tracing or https://ui.perfetto.dev, or summarise it with
/// scripts/trace_summary.py.

#include <string>

namespace attnrec {

class TraceRecorder {
 public:
  /// Starts recording this process's operators (and CUDA's activity when `cuda`).
  explicit TraceRecorder(bool cuda);
  TraceRecorder(const TraceRecorder&) = delete;
  TraceRecorder& operator=(const TraceRecorder&) = delete;
  /// Stops recording if save() has not (the trace is dropped).
  ~TraceRecorder();
  /// Stops recording and writes the trace to `path` (JSON); an IoError names the path if it
  /// cannot be written.
  void save(const std::string& path);

 private:
  bool running_ = false;
};

}  // namespace attnrec
