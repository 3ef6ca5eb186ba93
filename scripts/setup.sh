#!/bin/sh
# Installs the Debian packages aqa needs, then bootstraps, configures and builds it in place.
# Usage: scripts/setup.sh [configure options...]   (e.g. --enable-debug, --without-cuda)
# The CUDA toolkit is optional and not installed here: configure uses it when it finds it.
# Open MPI (libopenmpi-dev, openmpi-bin) is optional for the build (--without-mpi) and installed
# here so that mpirun runs the data-parallel tests.
set -eu
cd "$(dirname "$0")/.."
packages="build-essential autoconf automake libtool pkg-config libopenblas-dev zlib1g-dev libpng-dev
  libjpeg62-turbo-dev libcjson-dev libopenmpi-dev openmpi-bin"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null 2>&1
[ -f Makefile ] && [ config.status -nt configure ] || ./configure "$@"
make -j"$(nproc)"
