#!/usr/bin/env bash
# Build the documentation site into site/ (not committed) with mkdocs build --strict: any warning (a
# broken link or anchor, a page missing from the nav, a docstring the API reference cannot read) fails it.
#
#   bash scripts/docs.sh                    # then: python -m http.server -d site 8001
#   bash scripts/docs.sh --site-dir /tmp/s  # extra arguments go to mkdocs build
#
# Installs the docs extra (mkdocs, mkdocs-material, mkdocstrings[python]) into .venv when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import mkdocs, material, mkdocstrings, mkdocstrings_handlers.python" 2>/dev/null; then
  echo "docs.sh: installing the docs extra into .venv" >&2
  .venv/bin/python -m pip install --quiet -e ".[docs]"
fi
# the benchmark report (included by docs/results.md) links its plot beside it: give the site a copy
# (docs/latency_accuracy.png is ignored by git; the plot itself is committed under benchmarks/)
if [ -f benchmarks/latency_accuracy.png ]; then cp benchmarks/latency_accuracy.png docs/latency_accuracy.png; fi
NO_MKDOCS_2_WARNING=1 .venv/bin/python -m mkdocs build --strict --clean "$@"
