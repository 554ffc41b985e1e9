#pragma once
/// \file The C++ runtime a program built against PyPI's LibTorch binds to.
///
/// PyPI's libtorch.so exports its own copies of some libstdc++ functions (182 `std::` symbols,
/// std::filesystem among them). Where libtorch.so comes before libstdc++ in the program's
/// symbol search order, the program's calls bind to those copies and crash
/// (std::filesystem::remove_all through a null pointer). The build lists libstdc++ first
/// (CMakeLists.txt), but not every linker keeps that order: on an H200 machine (Ubuntu 24.04,
/// GCC 13, GNU ld 2.42) the executables listed libtorch.so first and crashed in
/// std::filesystem::remove_all. The check below looks where the call really binds.

#include <string>

namespace attnrec {

/// The file a loaded shared library was loaded from ("" if `soname` is not loaded).
std::string loaded_library_path(const std::string& soname);

/// True when this program's std::filesystem calls bind into LibTorch rather than libstdc++.
bool filesystem_bound_to_libtorch();

/// When filesystem_bound_to_libtorch(): puts the loaded libstdc++ first in LD_PRELOAD (marking
/// the environment so that it happens once) and returns true: the caller re-executes itself,
/// and the new process binds to libstdc++. Otherwise returns false and changes nothing.
bool prefer_system_libstdcxx();

}  // namespace attnrec
