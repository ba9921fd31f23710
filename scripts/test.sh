#!/usr/bin/env bash
# The test suite, with every set-up step: .venv with every extra (bootstrap.sh), Xvfb for the GUI
# tests (xvfb.sh), Chromium for the web page test (chromium.sh), the SDK's tests in .venv-sdk
# without TensorFlow (test_sdk.sh), then every test in .venv. Tests read CIFAR-10 from $CIFAR10_DIR
# (default: ../shared/datasets/cifar10 beside the repository).
#   bash scripts/test.sh              everything (what .ci/run runs)
#   bash scripts/test.sh --fast [ARGS] the fast lane: every test not marked slow (none trains or converts
#                                     a model: tests/conftest.py fails one that does), in parallel
#                                     (pytest-xdist, TEST_WORKERS=auto by default), in .venv only
#   bash scripts/test.sh ARGS         only the .venv run, with ARGS passed to pytest
set -euo pipefail
source "$(dirname "$0")/common.sh"
bash scripts/xvfb.sh || echo "test.sh: warning: no Xvfb, so the GUI tests will fail" >&2
bash scripts/chromium.sh || echo "test.sh: warning: no Chromium, so the web page test will fail" >&2
if [ "${1:-}" = "--fast" ]; then
  shift
  exec .venv/bin/python -m pytest -m "not slow" -n "${TEST_WORKERS:-auto}" --dist loadfile "$@"
fi
if [ $# -eq 0 ]; then
  bash scripts/test_sdk.sh -q
fi
exec .venv/bin/python -m pytest "$@"
