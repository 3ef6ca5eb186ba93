#!/bin/sh
# Installs the Debian packages aqa needs, then bootstraps, configures and builds it in place.
# Usage: scripts/setup.sh [configure options...]   (e.g. --enable-debug, --without-cuda)
# The CUDA toolkit is optional and not installed here: configure uses it when it finds it.
# clang, its runtime (libFuzzer, sanitizers) and OpenMP build the fuzzing harnesses of tests/fuzz/.
# Open MPI (libopenmpi-dev, openmpi-bin) is optional for the build (--without-mpi) and installed
# here so that mpirun runs the data-parallel tests.
# FFmpeg's libraries (video files) are installed but optional too: --without-ffmpeg leaves them out.
# When another package manager holds the apt/dpkg lock (an unattended upgrade, a second setup),
# this waits for it (up to 20 minutes, saying so once) instead of failing.
set -eu
cd "$(dirname "$0")/.."
packages="build-essential autoconf automake libtool pkg-config libopenblas-dev zlib1g-dev libpng-dev
  libjpeg62-turbo-dev libcjson-dev clang libomp-dev libopenmpi-dev openmpi-bin libavformat-dev libavcodec-dev
  libswscale-dev libavutil-dev ffmpeg"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# apt-get "$@", retried while the package manager's lock is held by another process
apt_wait() {
    waited=0
    while :; do
        if out=$($SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 "$@" 2>&1); then
            return 0
        fi
        if echo "$out" | grep -q -e 'Could not get lock' -e 'Unable to lock' -e 'is held by process' &&
            [ "$waited" -lt 1200 ]; then
            [ "$waited" -eq 0 ] && echo "setup: another package manager holds the apt/dpkg lock; waiting" >&2
            sleep 10
            waited=$((waited + 10))
            continue
        fi
        echo "$out" | tail -20 >&2
        return 1
    done
}

missing() {
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || printf ' %s' "$p"
    done
}
need=$(missing $packages)
if [ -n "$need" ]; then
    echo "setup: installing$need" >&2
    apt_wait update -qq
    apt_wait install -y -qq $need
fi
# libFuzzer and the sanitizer runtimes of the installed clang (Debian splits them out)
clang_major=$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9][0-9]*\).*/\1/p' | head -1)
if [ -n "$clang_major" ]; then
    need=$(missing "libclang-rt-$clang_major-dev")
    if [ -n "$need" ] && apt-cache show "libclang-rt-$clang_major-dev" >/dev/null 2>&1; then
        echo "setup: installing$need" >&2
        apt_wait install -y -qq $need
    fi
fi
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null 2>&1
[ -f Makefile ] && [ config.status -nt configure ] || ./configure "$@"
make -j"$(nproc)"
