#include "attnrec/util/libstdcxx.hpp"

#include <dlfcn.h>
#include <link.h>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace attnrec {

std::string loaded_library_path(const std::string& soname) {
  void* handle = ::dlopen(soname.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return "";
  link_map* map = nullptr;
  std::string path;
  if (::dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr && map->l_name != nullptr) {
    path = map->l_name;
  }
  ::dlclose(handle);
  return path;
}

bool filesystem_bound_to_libtorch() {
  // Taking the address resolves through the same lookup as this program's calls.
  using RemoveAll = std::uintmax_t (*)(const std::filesystem::path&, std::error_code&);
  const RemoveAll bound = &std::filesystem::remove_all;
  Dl_info info{};
  if (::dladdr(reinterpret_cast<const void*>(bound), &info) == 0 || info.dli_fname == nullptr) {
    return false;
  }
  return std::string(info.dli_fname).find("libtorch") != std::string::npos;
}

bool prefer_system_libstdcxx() {
  constexpr const char* kMark = "ATTNREC_LIBSTDCXX_PRELOADED";
  if (std::getenv(kMark) != nullptr || !filesystem_bound_to_libtorch()) return false;
  const std::string libstdcxx = loaded_library_path("libstdc++.so.6");
  if (libstdcxx.empty()) return false;
  const char* old = std::getenv("LD_PRELOAD");
  const std::string preload = libstdcxx + (old && *old ? std::string(":") + old : "");
  ::setenv("LD_PRELOAD", preload.c_str(), /*overwrite=*/1);
  ::setenv(kMark, "1", /*overwrite=*/1);
  return true;
}

}  // namespace attnrec
