#!/usr/bin/env bash
# The SDK's tests in .venv-sdk: cifar-edge installed as a user installs the SDK,
# pip install -e ".[litert,onnx,dev]" (no TensorFlow, Keras, onnx or OpenCV), so that the promise
# "the SDK works without TensorFlow" is tested, not assumed. Re-installs only when pyproject.toml
# changed. Extra arguments go to pytest. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-sdk
# test files that need nothing but the SDK's extras, marked so by a module-level
# "pytestmark = pytest.mark.sdk" (TensorFlow-only checks in them are skipped here and run in .venv);
# the test run checks that TensorFlow is indeed absent
mapfile -t SDK_TESTS < <(grep -l '^pytestmark = .*pytest\.mark\.sdk\b' tests/test_*.py)
[ ${#SDK_TESTS[@]} -gt 0 ] || { echo "test_sdk.sh: no test file is marked pytest.mark.sdk" >&2; exit 1; }
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  echo "*" > "$VENV/.gitignore"  # as Python 3.13's venv does: git never sees it
fi
stamp=$VENV/.cifar-edge-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "test_sdk.sh: installing cifar-edge[litert,onnx,dev] into $VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e ".[litert,onnx,dev]"
  echo "$want" > "$stamp"
fi
if "$VENV/bin/python" -c 'import importlib.util, sys; sys.exit(any(importlib.util.find_spec(m) for m in ("tensorflow", "keras")))'; then
  :
else
  echo "test_sdk.sh: $VENV has TensorFlow or Keras installed; it must hold only the SDK's extras" >&2
  exit 1
fi
exec "$VENV/bin/python" -m pytest -p no:cacheprovider -m sdk "${SDK_TESTS[@]}" "$@"
