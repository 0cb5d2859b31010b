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
LOOM_BUILD_PACKAGES=(libopenblas-dev libopenmpi-dev openmpi-bin pkg-config)
