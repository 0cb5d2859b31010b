// CSignals: async-signal-safe stop requests. SIGTERM, SIGINT and SIGUSR1 set a flag that the
// trainer reads at step boundaries (Slurm sends SIGTERM before it kills a job).
#pragma once

/// Installs the handlers (idempotent).
void loom_install_stop_handlers(void);
/// The signal that asked to stop, or 0.
int loom_stop_signal(void);
/// Clears the request (tests).
void loom_clear_stop(void);
