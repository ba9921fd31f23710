#!/usr/bin/env bash
# Set up (see bootstrap.sh) and run the main job end to end, writing into out/.
# Today: check the data (statistics and a sample grid). Later stages (train -> convert ->
# parity -> classify) join here as they land. Extra arguments go to every data-reading step,
# e.g. --data PATH; without --data the data comes from $CIFAR10_DIR,
# ../shared/datasets/cifar10 beside the repository, the cache, or a download.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ -z "${CIFAR10_DIR:-}" ] && [ -d ../shared/datasets/cifar10 ]; then
  CIFAR10_DIR=$(cd ../shared/datasets/cifar10 && pwd)
  export CIFAR10_DIR
fi
OUT=${OUT:-out}
mkdir -p "$OUT"
run() { echo "+ cifar-edge $*" >&2; .venv/bin/cifar-edge "$@"; }

run data stats "$@"
run data stats --json "$@" > "$OUT/data_stats.json"
run data grid --out "$OUT/data_grid.png" --n 36 "$@"
echo "main: done; results in $OUT/" >&2
