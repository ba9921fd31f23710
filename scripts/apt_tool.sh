#!/usr/bin/env bash
# Usage: apt_tool.sh COMMAND PACKAGE PURPOSE
# Make sure COMMAND is installed for PURPOSE: a no-op when it is on PATH, else apt-get install PACKAGE
# (as root or through sudo). Used by scripts/xvfb.sh (Xvfb, the GUI tests) and scripts/chromium.sh
# (headless Chromium, the web page test), both run by scripts/test.sh.
set -euo pipefail
cmd=$1 package=$2 purpose=$3
name=$(basename "$0")
command -v "$cmd" >/dev/null 2>&1 && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$name: $cmd is missing and there is no apt-get: install it (Debian package $package) for $purpose" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "$name: $cmd is missing and installing it needs root: sudo apt-get install $package" >&2
    exit 1
  fi
fi
echo "$name: installing $package for $purpose" >&2
install() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$package" >/dev/null; }
install || { $SUDO apt-get update -q >/dev/null && install; }
command -v "$cmd" >/dev/null 2>&1
