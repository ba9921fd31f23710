#!/usr/bin/env bash
# Set up (see bootstrap.sh) and run the main job end to end on a small budget, writing into out/:
# data check -> train a quick resnet8 -> evaluate it -> convert it to TFLite/ONNX (float, int8)
# -> parity of every export with Keras -> classify sample test images with the SDK (int8 TFLite).
# Extra arguments go to every data-reading step, e.g. --data PATH; without --data the data comes
# from $CIFAR10_DIR, ../shared/datasets/cifar10 beside the repository, the cache, or a download.
# Budget: MAIN_EPOCHS (default 3) and MAIN_LIMIT training images (default 5000).
set -euo pipefail
source "$(dirname "$0")/common.sh"
OUT=${OUT:-out}
EPOCHS=${MAIN_EPOCHS:-3}
LIMIT=${MAIN_LIMIT:-5000}
mkdir -p "$OUT"
run() { echo "+ cifar-edge $*" >&2; .venv/bin/cifar-edge "$@"; }

run data stats "$@"
run data stats --json "$@" > "$OUT/data_stats.json"
run data grid --out "$OUT/data_grid.png" --n 36 "$@"
rm -rf "$OUT/quick-run"
run train --model resnet8 --epochs "$EPOCHS" --limit "$LIMIT" --out "$OUT/quick-run" "$@"
run evaluate "$OUT/quick-run/best.keras" --split test "$@"
rm -rf "$OUT/quick-export"
run convert "$OUT/quick-run/best.keras" --out "$OUT/quick-export" --calib-size 200 --limit 1000 "$@"
# A 3-epoch model is far from converged; parity bars are the issue's for float exports and
# looser for int8 (near-tied probabilities flip under quantization).
run parity "$OUT/quick-run/best.keras" "$OUT/quick-export" --limit 1000 --max-accuracy-drop 0.02 --min-int8-agreement 0.95 "$@"
# Sample images: the first test image of each class (from the image tree when there is one).
samples=()
if [ -n "${CIFAR10_DIR:-}" ] && [ -d "$CIFAR10_DIR/test" ]; then
  for d in "$CIFAR10_DIR"/test/*/; do files=("$d"*); samples+=("${files[0]}"); done
fi
if [ ${#samples[@]} -gt 0 ]; then
  run predict "${samples[@]}" --model "$OUT/quick-export/model_int8.tflite" --top-k 3
  run benchmark --model "$OUT/quick-export/model_int8.tflite" --threads 1 --runs 100
fi
echo "main: done; results in $OUT/ (quick-run/: training report, quick-export/: exports + manifest.json)" >&2
