#!/usr/bin/env bash
# Set up (see bootstrap.sh) and run the main job end to end on a small budget, writing into out/:
# data check -> train a quick resnet8 and evaluate it (a smoke run of the training recipe)
# -> convert the shipped default model to TFLite/ONNX (float, int8) -> parity of every export
# with Keras at the issue's bars -> classify sample test images with the SDK (int8 TFLite)
# -> benchmark it.
# Extra arguments go to every data-reading step, e.g. --data PATH; without --data the data comes
# from $CIFAR10_DIR, ../shared/datasets/cifar10 beside the repository, the cache, or a download.
# Budget: MAIN_EPOCHS (default 3) and MAIN_LIMIT training images (default 5000).
# MAIN_MODEL picks the model to convert (default models/default/best.keras; a quick 3-epoch model
# is far from converged, and its near-tied probabilities flip under int8 quantization).
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
MODEL=${MAIN_MODEL:-models/default/best.keras}
rm -rf "$OUT/export"
run convert "$MODEL" --out "$OUT/export" --limit 1000 "$@"
run parity "$MODEL" "$OUT/export" --limit 1000 "$@"
# Sample images: the first test image of each class (from the image tree when there is one).
samples=()
if [ -n "${CIFAR10_DIR:-}" ] && [ -d "$CIFAR10_DIR/test" ]; then
  for d in "$CIFAR10_DIR"/test/*/; do files=("$d"*); samples+=("${files[0]}"); done
fi
if [ ${#samples[@]} -gt 0 ]; then
  run predict "${samples[@]}" --model "$OUT/export/model_int8.tflite" --top-k 3
  run benchmark --model "$OUT/export/model_int8.tflite" --threads 1 --runs 100
fi
echo "main: done; results in $OUT/ (quick-run/: training report, export/: exports + manifest.json)" >&2
