#!/usr/bin/env bash
# Make sure Xvfb (the virtual X server the GUI tests start themselves) is installed: with apt-get,
# as root or through sudo, when it is missing. Run by scripts/test.sh; a no-op when Xvfb is there.
set -euo pipefail
exec bash "$(dirname "$0")/apt_tool.sh" Xvfb xvfb "the GUI tests"
