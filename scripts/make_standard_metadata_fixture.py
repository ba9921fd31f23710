#!/usr/bin/env python3
"""Write the test fixture ``tests/fixtures/standard_metadata_classifier.tflite``: a tiny float TFLite
classifier that carries **only** the standard TFLite Model Metadata (no ``cifar_edge`` entry), as a
MediaPipe-ready model from elsewhere would.

    python scripts/make_standard_metadata_fixture.py [--out PATH]

The model (8x8 RGB input) averages its normalized input over pixels and channels and scores
``bright`` against ``dark`` by the sign of that mean, so a classifier that applies the metadata's
normalization (mean 110, std 40, pixel units) calls a gray 100 image ``dark`` and a gray 200 image
``bright``; one that scaled pixels to [0, 1], or swapped mean and std, would call both ``bright``.
The metadata comes from :mod:`cifar_edge.convert.standard_metadata` (MediaPipe's writer builders), so this
script needs the ``train`` extra; the SDK tests that read the fixture need neither TensorFlow nor
MediaPipe. Exit status 0 on success, 1 when the file does not read back, 2 when a dependency is
missing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "standard_metadata_classifier.tflite"
LABELS = ("bright", "dark")
MEAN = (110.0, 110.0, 110.0)  # one value per channel alike: MediaPipe Tasks refuses per-channel normalization
STD = (40.0, 40.0, 40.0)
SIZE = 8
MODEL_NAME = "standard-metadata-fixture"


def build() -> bytes:
    """The fixture's bytes. Raises :class:`~edge_sdk.errors.MissingExtraError` without TensorFlow or MediaPipe."""
    import numpy as np

    from cifar_edge.cli.extras import require

    require("tensorflow", "train", "building the fixture model", quiet=True)
    import keras

    from cifar_edge.convert.embed import with_associated_files, with_metadata_entries
    from cifar_edge.convert.export import tflite_float
    from cifar_edge.convert.standard_metadata import build_standard_metadata
    from edge_sdk.spec import PreprocessSpec
    from edge_sdk.standard_metadata import METADATA_NAME

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(2, name="logits")
    outputs = keras.layers.Softmax(name="probability")(dense(pooled))
    model = keras.Model(inputs, outputs)
    dense.set_weights([np.array([[10.0, -10.0]] * 3, np.float32), np.zeros(2, np.float32)])
    tflite = tflite_float(model)
    spec = PreprocessSpec(labels=LABELS, input_height=SIZE, input_width=SIZE, mean=MEAN, std=STD)
    standard = build_standard_metadata(tflite, spec, MODEL_NAME)
    return with_associated_files(with_metadata_entries(tflite, {METADATA_NAME: standard.buffer}), standard.files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=FIXTURE, help=f"where to write it (default {FIXTURE.relative_to(REPO)})")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # a script's own process: before TensorFlow loads
    sys.path.insert(0, str(REPO))
    from cifar_edge.cli.atomic import write_bytes_atomic
    from edge_sdk.errors import MissingExtraError

    try:
        data = build()
    except MissingExtraError as exc:
        print(f"make_standard_metadata_fixture: {exc}", file=sys.stderr)
        return 2
    from edge_sdk.standard_metadata import read_standard_metadata

    found = read_standard_metadata(data)  # verified before it replaces the committed file
    if found is None or (found.labels, found.normalization()) != (LABELS, (MEAN, STD)):
        print(f"make_standard_metadata_fixture: the metadata does not read back as written: {found}", file=sys.stderr)
        return 1
    write_bytes_atomic(args.out, data)
    print(f"wrote {args.out} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
