#!/bin/sh
# Installs the Debian packages aqa needs, then bootstraps, configures and builds it in place.
# Usage: scripts/setup.sh [configure options...]   (e.g. --enable-debug, --without-cuda)
# The CUDA toolkit is optional and not installed here: configure uses it when it finds it.
# FFmpeg's libraries (video files) are installed but optional too: --without-ffmpeg leaves them out.
set -eu
cd "$(dirname "$0")/.."
packages="build-essential autoconf automake libtool pkg-config libopenblas-dev zlib1g-dev libpng-dev
  libjpeg62-turbo-dev libcjson-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg"
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
