#pragma once
/// \file Graceful interruption. The first SIGINT/SIGTERM only sets a flag that the training
/// loop checks after each step (it then writes a checkpoint and exits 130/143); the handler
/// restores the default action, so a second signal ends the process at once. Checkpoints are
/// renamed into place atomically, so that cannot corrupt the last complete one.

namespace attnrec {

/// Installs the handlers (idempotent).
void install_stop_handlers();

/// The signal number received (SIGINT or SIGTERM), 0 when none.
int stop_signal();

}  // namespace attnrec
