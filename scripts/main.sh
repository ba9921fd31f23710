#!/usr/bin/env bash
# Set up (see bootstrap.sh) and run the main job end to end on a small budget, writing into out/:
# data check -> a quick training run of the default's recipe (airbench93: the default's net at
# half the width, 54 M MACs), evaluated next to the shipped default -> convert the SHIPPED default model to int8 TFLite/ONNX -> parity
# of every export with Keras at the conversion bars -> classify sample test images with the SDK
# (its int8 TFLite) -> benchmark it.
# Extra arguments go to every data-reading step, e.g. --data PATH; without --data the data comes
# from $CIFAR10_DIR, ../shared/datasets/cifar10 beside the repository, the cache, or a download.
# Budget: MAIN_QUICK_MODEL (default airbench93) for MAIN_EPOCHS (default 5) over MAIN_LIMIT
# training images (default 8000): about 10 minutes for the whole job on a 2-core AVX2 machine.
# MAIN_MODEL picks the model to convert (default models/default/qat/best.keras, the quantization-aware
# model the bundled default files come from, so int8 formats only: a few-minute model is far from
# converged and its near-tied probabilities flip under int8 quantization, so the conversion bars are
# checked on the model users get; MAIN_MODEL=models/default/best.keras converts the float model it was
# fine-tuned from to every format, post-training).
set -euo pipefail
source "$(dirname "$0")/common.sh"
OUT=${OUT:-out}
QUICK_MODEL=${MAIN_QUICK_MODEL:-airbench93}
EPOCHS=${MAIN_EPOCHS:-5}
LIMIT=${MAIN_LIMIT:-8000}
MODEL=${MAIN_MODEL:-models/default/qat/best.keras}
TTA=${MAIN_TTA:-flip}  # as the shipped default's exports (convert --tta)
mkdir -p "$OUT"
run() { echo "+ cifar-edge $*" >&2; .venv/bin/cifar-edge "$@"; }
say() { echo "main: $*" >&2; }

run data stats "$@"
run data stats --json "$@" > "$OUT/data_stats.json"
run data grid --out "$OUT/data_grid.png" --n 36 "$@"

say "step 1/4: a quick run of the default model's recipe: $QUICK_MODEL, $EPOCHS epochs on $LIMIT images"
rm -rf "$OUT/quick-run"
run train --model "$QUICK_MODEL" --epochs "$EPOCHS" --limit "$LIMIT" --out "$OUT/quick-run" "$@"
run evaluate "$OUT/quick-run/best.keras" --split test --json "$@" > "$OUT/quick-run/evaluation.json"
.venv/bin/python - "$OUT/quick-run/evaluation.json" "$MODEL" <<'EOF' >&2
import json, pathlib, sys
quick = json.loads(pathlib.Path(sys.argv[1]).read_text())
shipped = pathlib.Path(sys.argv[2]).with_name("summary.json")
line = f"main: quick run: {quick['accuracy']:.1%} test accuracy on {quick['images']:,} test images"
if shipped.is_file():
    s = json.loads(shipped.read_text())
    how = "fine-tuned quantization-aware for " if s.get("config", {}).get("qat") else ""
    line += (f"; the shipped model ({sys.argv[2]}, {how}{s['epochs']} epochs on {s['train_images']:,} images) "
             f"scores {s['test_accuracy']:.1%}: the quick run shows the recipe works on this machine, "
             "the shipped model is what the SDK uses")
print(line)
EOF

say "step 2/4: convert the shipped model $MODEL (not the quick run) and check every export against Keras"
rm -rf "$OUT/export"
# convert and parity exit 1 when a file misses a bar; the job reports it and goes on to use the files
checked() { "$@" || { status=$?; [ "$status" -eq 1 ] || exit "$status"; say "a file missed its conversion bar (the FAIL line above); going on"; }; }
checked run convert "$MODEL" --out "$OUT/export" --limit 1000 --tta "$TTA" "$@"
checked run parity "$MODEL" "$OUT/export" --limit 1000 "$@" > "$OUT/parity.txt"
cat "$OUT/parity.txt"

say "step 3/4: classify one test image per class with the int8 TFLite export of $MODEL"
samples=()
if [ -n "${CIFAR10_DIR:-}" ] && [ -d "$CIFAR10_DIR/test" ]; then
  for d in "$CIFAR10_DIR"/test/*/; do files=("$d"*); samples+=("${files[0]}"); done
fi
if [ ${#samples[@]} -gt 0 ]; then
  run predict "${samples[@]}" --model "$OUT/export/model_int8.tflite" --top-k 3 | tee "$OUT/predict.txt"
  run predict "${samples[@]}" --model "$OUT/export/model_int8.tflite" --top-k 3 --json > "$OUT/predict.json"
  say "step 4/4: benchmark the int8 TFLite export"
  run benchmark --model "$OUT/export/model_int8.tflite" --threads 1 --runs 100 --json > "$OUT/benchmark.json"
  .venv/bin/python -c 'import json, sys; from cifar_edge.cli.benchmark import render_benchmark
print(render_benchmark(json.load(open(sys.argv[1]))))' "$OUT/benchmark.json" | tee "$OUT/benchmark.txt"
fi
say "done; results in $OUT/ (quick-run/: training report + evaluation.json; export/: exports + manifest.json; parity.txt; predict.txt/.json; benchmark.txt/.json)"
