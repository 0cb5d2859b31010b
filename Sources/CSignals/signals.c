// CSignals: the stop-request flag and its handlers (see include/CSignals.h).
#include "CSignals.h"
#include <signal.h>
#include <pthread.h>
#include <string.h>

static volatile sig_atomic_t stop_signal = 0;

static void on_stop(int signal) { stop_signal = signal; }

void loom_install_stop_handlers(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &action, 0);
    sigaction(SIGINT, &action, 0);
    sigaction(SIGUSR1, &action, 0);
    // A parent may have spawned us with these blocked (posix_spawn inherits the signal mask):
    // unblock them in this thread, so the process always hears a stop request.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &set, 0);
}

int loom_stop_signal(void) { return stop_signal; }

void loom_clear_stop(void) { stop_signal = 0; }
