#pragma once
/// \file The one place where the supported LibTorch versions differ: Debian's libtorch-dev 1.13
/// (CPU) and the LibTorch of PyPI's torch 2.x wheels (CUDA). Code elsewhere calls these helpers
/// and never tests TORCH_VERSION_* itself.

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <string>

namespace c10d {
class Backend;
class ProcessGroup;
}  // namespace c10d

namespace attnrec::compat {

#if TORCH_VERSION_MAJOR >= 2
/// The base class of c10d's process groups (Gloo, NCCL): c10d::Backend in LibTorch 2.x,
/// c10d::ProcessGroup in 1.13 (dist/ includes the definitions).
using ProcessGroupBase = c10d::Backend;
#else
using ProcessGroupBase = c10d::ProcessGroup;
#endif

/// The LibTorch version attnrec was compiled against, e.g. "2.11.0".
inline std::string torch_version() { return TORCH_VERSION; }

/// Whether LibTorch runs its multi-tensor Adam (at::_fused_adam_) on the CPU: from 2.4 on; 1.13
/// has it for CUDA only.
constexpr bool kCpuMultiTensorAdam = TORCH_VERSION_MAJOR > 2 ||
                                     (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4);

/// Whether this build reads the optimizer state in a checkpoint written under LibTorch
/// `writer` ("" for checkpoints older than the field, all written by 1.13). LibTorch 2.x keys
/// Adam's saved state by the decimal value of a pointer where 1.13 wrote it in hexadecimal, so
/// 2.x maps 1.13's states onto the wrong parameters; 1.13 reads 2.x's keys as opaque strings and
/// maps them correctly.
inline bool optimizer_state_readable(const std::string& writer) {
#if TORCH_VERSION_MAJOR >= 2
  return !writer.empty() && writer.rfind("1.", 0) != 0;
#else
  (void)writer;
  return true;
#endif
}

#if TORCH_VERSION_MAJOR >= 2
/// Key of a parameter's entry in `torch::optim::Optimizer::state()`: the tensor's implementation
/// pointer (LibTorch 2.x) or its text form (1.13).
using OptimizerStateKey = void*;
inline OptimizerStateKey optimizer_state_key(const torch::Tensor& param) {
  return param.unsafeGetTensorImpl();
}
#else
using OptimizerStateKey = std::string;
inline OptimizerStateKey optimizer_state_key(const torch::Tensor& param) {
  return c10::guts::to_string(param.unsafeGetTensorImpl());
}
#endif

/// Base of a custom CPU allocator: subclasses implement `allocate_bytes`. c10::Allocator's own
/// interface differs (`allocate` is const in 1.13 and not in 2.x, where `copy_data` must also be
/// defined).
class AllocatorBase : public c10::Allocator {
 public:
#if TORCH_VERSION_MAJOR >= 2
  c10::DataPtr allocate(size_t n) final { return allocate_bytes(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const final {
    default_copy_data(dest, src, count);
  }
#else
  c10::DataPtr allocate(size_t n) const final { return allocate_bytes(n); }
#endif

 protected:
  virtual c10::DataPtr allocate_bytes(size_t n) const = 0;
};

/// Runs the code in its scope under LibTorch's autocast for one device type (CPU or CUDA) with
/// `dtype` as the lower precision, as Python's `torch.autocast(device_type, dtype)` does, and
/// restores the previous state on exit. A disabled guard touches nothing.
class AutocastGuard {
 public:
  AutocastGuard(c10::DeviceType type, bool enabled, at::ScalarType dtype)
      : type_(type), enabled_(enabled) {
    if (!enabled_) return;
    was_enabled_ = is_enabled(type_);
    old_dtype_ = get_dtype(type_);
    set_enabled(type_, true);
    set_dtype(type_, dtype);
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    set_enabled(type_, was_enabled_);
    set_dtype(type_, old_dtype_);
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
#if TORCH_VERSION_MAJOR >= 2
  static bool is_enabled(c10::DeviceType t) { return at::autocast::is_autocast_enabled(t); }
  static void set_enabled(c10::DeviceType t, bool on) { at::autocast::set_autocast_enabled(t, on); }
  static at::ScalarType get_dtype(c10::DeviceType t) { return at::autocast::get_autocast_dtype(t); }
  static void set_dtype(c10::DeviceType t, at::ScalarType d) {
    at::autocast::set_autocast_dtype(t, d);
  }
#else
  static bool is_enabled(c10::DeviceType t) {
    return t == c10::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
  }
  static void set_enabled(c10::DeviceType t, bool on) {
    t == c10::kCUDA ? at::autocast::set_enabled(on) : at::autocast::set_cpu_enabled(on);
  }
  static at::ScalarType get_dtype(c10::DeviceType t) {
    return t == c10::kCUDA ? at::autocast::get_autocast_gpu_dtype()
                           : at::autocast::get_autocast_cpu_dtype();
  }
  static void set_dtype(c10::DeviceType t, at::ScalarType d) {
    t == c10::kCUDA ? at::autocast::set_autocast_gpu_dtype(d)
                    : at::autocast::set_autocast_cpu_dtype(d);
  }
#endif

  c10::DeviceType type_;
  bool enabled_;
  bool was_enabled_ = false;
  at::ScalarType old_dtype_ = at::kFloat;
};

}  // namespace attnrec::compat
