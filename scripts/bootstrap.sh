#!/usr/bin/env bash
# Create .venv (once) and install cifar-edge with every extra into it.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "cifar-edge needs Python >= 3.10, found " + sys.version.split()[0])'
  "$PY" -m venv .venv
fi
stamp=.venv/.cifar-edge-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "bootstrap: installing cifar-edge[all] into .venv" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[all]"
  echo "$want" > "$stamp"
fi
