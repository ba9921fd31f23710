#!/usr/bin/env bash
# Make sure headless Chromium (Debian's chromium, which tests/test_serve_browser.py drives) is installed:
# with apt-get, as root or through sudo, when it is missing. Run by scripts/test.sh.
set -euo pipefail
exec bash "$(dirname "$0")/apt_tool.sh" chromium chromium "the web page test (cifar-edge serve)"
