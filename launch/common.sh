# launch/common.sh: shared helpers for the launch scripts (sourced, not run): installing missing
# Debian packages and finding the Swift toolchain. It is not a build system.

# Installs the given Debian packages that are not installed yet (apt-get update once first).
# A failed attempt (a mirror or DNS that is briefly away) is retried twice, LOOM_APT_RETRY_SECONDS
# (default 10) apart; after the third, it says which packages are missing and returns 1.
ensure_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "launch: installing ${missing[*]}" >&2
    local sudo="" attempt
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    for attempt in 1 2 3; do
        if $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; then
            return 0
        fi
        if [ $attempt -lt 3 ]; then
            echo "launch: apt-get failed (attempt $attempt of 3); trying again in ${LOOM_APT_RETRY_SECONDS:-10} s" >&2
            sleep "${LOOM_APT_RETRY_SECONDS:-10}"
        fi
    done
    echo "launch: could not install ${missing[*]} with apt-get (is the network or the Debian mirror reachable?); install them and run again" >&2
    return 1
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

# Writes the World English Bible (Debian's sword-text-web, one verse per line, without the
# "Book c:v: " references) to $1 unless it is already there; needs diatheke and sword-text-web.
ensure_bible_corpus() {
    local corpus="$1"
    [ -s "$corpus" ] && return 0
    mkdir -p "$(dirname "$corpus")"
    echo "launch: extracting the World English Bible to $corpus" >&2
    diatheke -b engWEB2015eb -f plain -k "Gen 1:1-Rev 22:21" \
        | sed -E 's/^([1-3] )?[A-Z][A-Za-z ]* [0-9]+:[0-9]+: //' \
        | grep -v '^(engWEB2015eb)$' > "$corpus.tmp"
    mv "$corpus.tmp" "$corpus"
}

# The packages every Loom build needs.
LOOM_BUILD_PACKAGES=(libopenblas-dev libdnnl-dev libopenmpi-dev openmpi-bin pkg-config)

# Runs a job launcher (mpirun or srun) in the background and waits for it, passing stop requests
# on: SIGTERM, SIGINT, SIGUSR1 and SIGHUP to this script become one SIGUSR1 to the launcher, which
# forwards it to every rank. (OpenMPI treats a SIGTERM or SIGINT to mpirun as "abort": it SIGKILLs
# the ranks a second later and exits 1; srun answers a SIGTERM by killing the tasks at once and
# a single SIGINT by printing their status. Neither lets a step in progress finish and
# checkpoint.) The ranks finish their step, rank 0 writes a checkpoint, every rank exits 75, and
# so does this function. The launcher runs in its own session, so a terminal's Ctrl-C (or
# Slurm's `scancel --full`, which signals the batch script's process group) reaches only this
# script, and with stdin from /dev/null. A stop that arrives while the launcher is still starting
# is passed on once it handles SIGUSR1 (before that, SIGUSR1 would kill it). Sets `job_status` to
# the launcher's exit status. `launch_stop_requested` becomes 1 once a stop request has arrived
# (no restart after it).
launch_stop_requested=0
run_forwarding_stops() {
    local child=""
    # True once process $1 catches or blocks SIGUSR1 (bit 10 of SigCgt or SigBlk in
    # /proc/PID/status: srun inside an allocation blocks it and takes it with sigwait), or has ended.
    catches_usr1() {
        local masks
        masks=$(awk '/^Sig(Cgt|Blk):/ {printf "%s ", $2}' "/proc/$1/status" 2>/dev/null) || return 0
        [ -n "$masks" ] || return 0
        local m
        for m in $masks; do (( (16#$m >> 9) & 1 )) && return 0; done
        return 1
    }
    forward_stop() {
        if [ "$launch_stop_requested" -eq 0 ]; then
            echo "launch: $1 received; asking the job to checkpoint at the next step boundary (exit 75)" >&2
        fi
        launch_stop_requested=1
        [ -n "$child" ] || return 0
        local tries=0
        until catches_usr1 "$child" || [ "$tries" -ge 300 ]; do sleep 0.1; tries=$((tries + 1)); done
        kill -USR1 "$child" 2>/dev/null || true
    }
    trap 'forward_stop SIGTERM' TERM
    trap 'forward_stop SIGINT' INT
    trap 'forward_stop SIGUSR1' USR1
    trap 'forward_stop SIGHUP' HUP
    setsid "$@" </dev/null &
    child=$!
    # A stop that came while the launcher was being started.
    [ "$launch_stop_requested" -eq 1 ] && forward_stop again
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
