# launch/common.sh: shared helpers for the launch scripts (sourced, not run): installing missing
# Debian packages and finding the Swift toolchain. It is not a build system.

# Installs the given Debian packages that are not installed yet (apt-get update once first).
ensure_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "launch: installing ${missing[*]}" >&2
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Puts swift on PATH (the toolchain lives in /opt/swift on our machines) or explains how to get it.
ensure_swift() {
    if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
        export PATH="/opt/swift/usr/bin:$PATH"
    fi
    if ! command -v swift >/dev/null 2>&1; then
        echo "launch: no Swift toolchain found. Install Swift 6 from swift.org (or put it in /opt/swift) and rerun." >&2
        exit 1
    fi
}

# The packages every Loom build needs.
LOOM_BUILD_PACKAGES=(libopenblas-dev libdnnl-dev libopenmpi-dev openmpi-bin pkg-config)

# Runs a job launcher (mpirun) in the background and waits for it, passing stop requests on:
# SIGTERM, SIGINT, SIGUSR1 and SIGHUP to this script become one SIGUSR1 to the launcher, which
# OpenMPI forwards to every rank. (OpenMPI treats a SIGTERM or SIGINT to mpirun as "abort": it
# SIGKILLs the ranks a second later and exits 1, so a step in progress could never finish and
# checkpoint.) The ranks finish their step, rank 0 writes a checkpoint, every rank exits 75, and
# so does this function. The launcher runs in its own session, so a terminal's Ctrl-C reaches
# only this script, and with stdin from /dev/null. Sets `job_status` to the launcher's exit status.
# `launch_stop_requested` becomes 1 once a stop request has arrived (no restart after it).
launch_stop_requested=0
run_forwarding_stops() {
    local child
    setsid "$@" </dev/null &
    child=$!
    forward_stop() {
        if [ "$launch_stop_requested" -eq 0 ]; then
            echo "launch: $1 received; asking the job to checkpoint at the next step boundary (exit 75)" >&2
        fi
        launch_stop_requested=1
        kill -USR1 "$child" 2>/dev/null || true
    }
    trap 'forward_stop SIGTERM' TERM
    trap 'forward_stop SIGINT' INT
    trap 'forward_stop SIGUSR1' USR1
    trap 'forward_stop SIGHUP' HUP
    # `wait` returns early (status > 128) whenever a trapped signal arrives: wait again until the
    # launcher itself has exited.
    while true; do
        wait "$child" && job_status=0 || job_status=$?
        kill -0 "$child" 2>/dev/null || break
    done
    # If the last wait was cut short by a signal as the launcher exited, collect its real status.
    if [ "$job_status" -gt 128 ]; then
        local late
        wait "$child" 2>/dev/null && late=0 || late=$?
        [ "$late" -ne 127 ] && job_status=$late
    fi
    trap - TERM INT USR1 HUP
}
