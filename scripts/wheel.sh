#!/usr/bin/env bash
# Build the wheel a device installs without the repository: dist/cifar_edge-VERSION-py3-none-any.whl
# (the SDK, the bundled models and the cifar_edge tools; no tests, no training runs). Then, where twine
# is installed (the dev extra), check that its metadata and README render on PyPI (twine check --strict).
#
#   bash scripts/wheel.sh [OUT_DIR]          # default OUT_DIR: dist
#   scp dist/cifar_edge-*.whl pi@raspberrypi.local:
#   pip install "cifar_edge-0.1.0-py3-none-any.whl[litert]"     # on the device, in a venv
#
# The build runs in pip's isolated build environment (it fetches setuptools from PyPI, or from pip's cache).
# The last line printed is the wheel's path.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
OUT=${1:-dist}
mkdir -p "$OUT"
# setuptools copies sources into build/ and reuses what it finds there: a module deleted since the last
# build would still ship, so every build starts without it
rm -rf build
"$PY" -m pip wheel --quiet --no-deps --wheel-dir "$OUT" .
rm -rf build
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)
wheel="$OUT/cifar_edge-$version-py3-none-any.whl"
[ -f "$wheel" ] || { echo "wheel.sh: expected $wheel, not found" >&2; exit 1; }
if "$PY" -c "import twine" 2>/dev/null; then
  "$PY" -m twine check --strict "$wheel" >&2
else
  echo "wheel.sh: twine is not installed (pip install twine, or the dev extra): metadata not checked" >&2
fi
echo "$wheel"
