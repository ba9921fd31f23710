#!/usr/bin/env bash
# The whole test suite, with every set-up step: .venv with every extra (bootstrap.sh), Xvfb for the
# GUI tests (xvfb.sh), Chromium for the web page test (chromium.sh), the SDK's tests in .venv-sdk
# without TensorFlow (test_sdk.sh), then every test in .venv. Tests read CIFAR-10 from $CIFAR10_DIR
# (default: ../shared/datasets/cifar10 beside the repository). With arguments, only the .venv run
# happens and the arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/common.sh"
bash scripts/xvfb.sh || echo "test.sh: warning: no Xvfb, so the GUI tests will fail" >&2
bash scripts/chromium.sh || echo "test.sh: warning: no Chromium, so the web page test will fail" >&2
if [ $# -eq 0 ]; then
  bash scripts/test_sdk.sh -q
fi
exec .venv/bin/python -m pytest "$@"
