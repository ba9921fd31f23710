#!/usr/bin/env bash
# Make sure Xvfb (the virtual X server the GUI tests start themselves) is installed: with apt-get,
# as root or through sudo, when it is missing. Run by scripts/test.sh; a no-op when Xvfb is there.
set -euo pipefail
command -v Xvfb >/dev/null 2>&1 && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "xvfb.sh: Xvfb is missing and there is no apt-get: install Xvfb (package xvfb / xorg-x11-server-Xvfb) for the GUI tests" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "xvfb.sh: Xvfb is missing and installing it needs root: sudo apt-get install xvfb" >&2
    exit 1
  fi
fi
echo "xvfb.sh: installing xvfb for the GUI tests" >&2
install() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends xvfb >/dev/null; }
install || { $SUDO apt-get update -q >/dev/null && install; }
command -v Xvfb >/dev/null 2>&1
