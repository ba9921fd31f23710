"""Export a trained ``.keras`` model to every format, validate each file against Keras, write the manifest."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from edge_sdk import __version__
from cifar_edge.cli.atomic import remove_stale_parts, write_bytes_atomic, write_text_atomic
from edge_sdk.classifier import Classifier
from edge_sdk.errors import EdgeSDKError
from cifar_edge.cli.errors import DatasetError
from cifar_edge.cli.formats import EXPORTER_OPTIONS, FILE_NAMES, ONNX_QUANTIZATION_OPTIONS, FORMATS, NAMES, ExportFormat, exported_files, parse_formats
from edge_sdk.metadata import ModelMetadata, read_metadata
from cifar_edge.cli.progress import progress_bar
from edge_sdk.spec import PreprocessSpec
from cifar_edge.cli.terminal import strict_json
from cifar_edge.train.data import ImageSet, resolve_source, stratified_indices
from cifar_edge.train.evaluation import keras_probabilities
from cifar_edge.train.models import count_macs
from cifar_edge.train.qat import is_quantize_aware
from cifar_edge.train.training import load_keras_model, load_spec_beside

from . import export
from .embed import embed_metadata
from .contact_sheet import contact_sheet
from .layer_snr import SNR_IMAGES, layer_snr
from .parity import Thresholds, compare, cross_agreement, explain, judge
from .photos import load_parity_images
from .tta import TTA_MODES, TTA_VIEWS, with_tta

MANIFEST = "manifest.json"


@dataclass
class ConvertConfig:
    """What to export and how to calibrate and validate it."""

    model: str
    out: str
    formats: tuple[str, ...] = NAMES  # names from cifar_edge.cli.formats
    calib_size: int = 500
    calib_method: str = "minmax"
    onnx_activations: str = "uint8"
    onnx_reduce_range: bool = True
    tflite_input_type: str = "int8"  # int8 TFLite input/output type: int8, or uint8 (what MediaPipe Tasks takes)
    data: str | None = None
    cache_dir: str | None = None
    limit: int | None = None  # validation images (None: the whole test split)
    seed: int = 0
    model_version: str | None = None
    tta: str = "none"  # test-time augmentation built into every export (convert.tta)
    thresholds: Thresholds = field(default_factory=Thresholds)
    resize: str | None = None  # framing stored in every file (None: spec.json's)
    unknown_keep: float | None = 0.95  # share of known pictures the unknown threshold keeps (None: no threshold)
    unknown_calibration: str | None = None  # labelled folder of photos to calibrate it on (None: the validation images)
    unknown_score: str = "certainty"  # the score the threshold applies to (edge_sdk.spec.UNKNOWN_SCORES)
    progress: IO[str] | None = None  # where to draw a progress bar over the formats (None: no bar)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"cifar-edge": __version__}
    for dist in ("tensorflow", "tensorflow-cpu", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return versions


def _run_info(model_path: Path) -> dict[str, Any]:
    summary = model_path.with_name("summary.json")
    if summary.is_file():
        try:
            return json.loads(summary.read_text(encoding="utf-8"))
        except ValueError:
            return {}
    return {}


def portable_dataset(description: str | None, train_sha256: str | None = None) -> str:
    """The training data's description without machine-local paths (each path becomes its last component),
    and the content hash of the training split when given:
    ``"image-folder /home/me/data/cifar10 (from $CIFAR10_DIR)"`` -> ``"image-folder cifar10 (from $CIFAR10_DIR)"``
    (+ ``"; train split sha256 1a2b..."``, see :meth:`ImageSet.content_sha256`)."""
    name = "CIFAR-10" if not description else re.sub(
        r"(?:[A-Za-z]:)?[\\/~][^\s()]*", lambda m: re.split(r"[\\/]", m.group(0).rstrip("\\/"))[-1] or "/", description)
    return f"{name}; train split sha256 {train_sha256}" if train_sha256 else name


def calibration_record(config: ConvertConfig, images: int, fmt: ExportFormat,
                       quantization_aware: bool = False) -> dict[str, Any]:
    """How ``fmt`` was calibrated, for its metadata and manifest entry: only the options the format uses; for a
    quantization-aware model (scales from the model, nothing calibrated) that fact and the input type."""
    if quantization_aware:
        record: dict[str, Any] = {"quantization_aware": True}
        if "tflite_input_type" in fmt.options:
            record["tflite_input_type"] = config.tflite_input_type
        return record
    record = {"split": "train", "images": images, "stratified": True, "seed": config.seed}
    if "calib_method" in fmt.options:
        record["onnx_method"] = config.calib_method
    if "onnx_activations" in fmt.options:
        record["onnx_activations"] = config.onnx_activations
    if "onnx_reduce_range" in fmt.options:
        record["onnx_weight_bits"] = 7 if config.onnx_reduce_range else 8
    if "tflite_input_type" in fmt.options:
        record["tflite_input_type"] = config.tflite_input_type
    return record


def load_eval_data(config: ConvertConfig, spec: PreprocessSpec) -> tuple[ImageSet, ImageSet, str]:
    """Calibration images (stratified from the training split), validation images (test split) and the
    content hash of the whole training split they come from."""
    source = resolve_source(config.data, cache_dir=config.cache_dir, progress=False)
    train = source.load("train", spec.labels, spec=spec)
    if not 1 <= config.calib_size <= len(train):
        raise DatasetError(f"--calib-size must be between 1 and {len(train)}, got {config.calib_size}")
    calib = train.subset(stratified_indices(train.labels, config.calib_size, config.seed), "calibration")
    test = source.load("test", spec.labels, spec=spec)
    if config.limit is not None and config.limit < len(test):
        test = test.subset(stratified_indices(test.labels, config.limit, config.seed))
    return calib, test, train.content_sha256()


def _formats_for(aware: bool, formats: tuple[ExportFormat, ...], given: bool) -> tuple[ExportFormat, ...]:
    """``formats`` less the float ones for a quantization-aware model (``aware``, :mod:`cifar_edge.train.qat`): it is
    the int8 function, so a float file would only re-run its fake quantization in float. Raises
    :class:`EdgeSDKError` when such a model was asked (``given``) for a float format."""
    if not aware:
        return formats
    floats = [fmt.name for fmt in formats if not fmt.quantized]
    if floats and given:
        raise EdgeSDKError(f"a quantization-aware model exports to int8 formats only; drop {', '.join(floats)} "
                           "from --formats")
    return tuple(fmt for fmt in formats if fmt.quantized)


#: the options a post-training quantization reads and a quantization-aware model's export does not
#: (its scales come from the model; ``tflite_input_type`` still applies)
CALIBRATING_OPTIONS = ("calib_size", *ONNX_QUANTIZATION_OPTIONS)


def _warn_ignored_calibration(config: ConvertConfig) -> None:
    """Log a warning naming each calibration option of ``config`` set away from its default: a
    quantization-aware model is exported without calibrating, so they change nothing."""
    defaults = ConvertConfig(model="", out="")
    ignored = [name for name in CALIBRATING_OPTIONS if getattr(config, name) != getattr(defaults, name)]
    if ignored:
        logging.getLogger(__name__).warning(
            "%s: a quantization-aware model takes its scales from the model, so it ignores %s",
            config.model, ", ".join("--" + name.replace("_", "-") for name in ignored))


def convert(config: ConvertConfig) -> dict[str, Any]:
    """Export, embed metadata, validate; return (and write) the manifest. For a quantization-aware model,
    logs a warning naming any calibration option given (it is exported without calibrating)."""
    formats = parse_formats(",".join(config.formats))
    if config.tta not in TTA_MODES:
        raise EdgeSDKError(f"unknown --tta {config.tta!r}; choose one of: {', '.join(TTA_MODES)}")
    model_path = Path(config.model)
    source = load_keras_model(model_path)
    aware = is_quantize_aware(source)
    formats = _formats_for(aware, formats, given=tuple(config.formats) != NAMES)
    if aware:
        _warn_ignored_calibration(config)
    model = with_tta(source, config.tta)  # validated against the same wrapped model
    spec = load_spec_beside(model_path).merged({"resize": config.resize} if config.resize else None)
    calib, test, train_sha256 = load_eval_data(config, spec)
    calib_inputs = spec.normalize(calib.images)
    keras_probs = keras_probabilities(model, test.images, spec)
    spec, unknown = calibrate_unknown(config, model, spec, keras_probs)
    # what `cifar-edge models` shows for a file: its source's accuracy here and its cost per call
    figures = {"test_accuracy": round(float((keras_probs.argmax(1) == test.labels).mean()), 4),
               "test_images": len(test), "macs": count_macs(source) * TTA_VIEWS[config.tta]}

    run = _run_info(model_path)
    source_sha = sha256_file(model_path)
    created = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    model_name = run.get("model", model_path.stem)
    version = config.model_version or f"{created[:10]}-{source_sha[:8]}"
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(out, [*FILE_NAMES, MANIFEST])  # left by a conversion killed mid-write
    files = []
    cache: dict[str, Any] = {}  # shared by the exporters of this conversion (ONNX int8 reuses the float ONNX)
    with progress_bar(len(formats), "export + validate", config.progress is not None, unit="file",
                      file=config.progress) as bar:
        for fmt in formats:
            started = time.perf_counter()
            calibration = calibration_record(config, len(calib), fmt, aware) if fmt.quantized else None
            meta = ModelMetadata(
                spec=spec,
                model_name=model_name,
                model_version=version,
                format=fmt.name,
                source_sha256=source_sha,
                dataset=portable_dataset(run.get("data"), train_sha256),
                created=created,
                converter=_versions(),
                extra={"tta": config.tta, **figures, **({"calibration": calibration} if calibration else {})},
            )
            target = out / fmt.file_name
            options = {name: getattr(config, name) for name in fmt.options if name in EXPORTER_OPTIONS}
            exported = getattr(export, fmt.exporter)(model, calib_inputs if fmt.quantized else None, cache=cache, **options)
            seconds = time.perf_counter() - started
            # checked before it is written, from a copy outside the output folder, so that the folder sees
            # one complete write per file: one load, the user's path for the check, the runtime's facts
            with tempfile.TemporaryDirectory(prefix="cifar-edge-check-") as tmp:
                candidate = Path(tmp) / fmt.file_name
                candidate.write_bytes(embed_metadata(exported, meta))
                with Classifier(candidate) as clf:
                    validation = compare(clf, test.images, test.labels, keras_probs, spec)
                    runtime = clf.describe()
            # the file's own accuracy, as measured just now, joins its metadata (`cifar-edge models` shows it);
            # only the metadata changes, so the check above holds for the file as written
            meta = replace(meta, extra={**meta.extra, "accuracy": round(validation["accuracy"], 4)})
            _write_export(target, embed_metadata(exported, meta))
            entry = {
                "format": fmt.name,
                "file": target.name,
                "bytes": target.stat().st_size,
                "sha256": sha256_file(target),
                "conversion_s": round(seconds, 2),
                **runtime,
                "validation": validation,
                "failures": judge(fmt.name, validation, config.thresholds),
            }
            if calibration:
                entry["calibration"] = calibration
            files.append(entry)
            bar.update()
    manifest = {
        "source": {"path": str(model_path), "sha256": source_sha, "model": model_name, "version": version},
        "spec": spec.to_dict(),
        "tta": config.tta,
        "created": created,
        "converter": _versions(),
        "validation_split": {"split": "test", "images": len(test)},
        "thresholds": vars(config.thresholds),
        "unknown": unknown,
        "files": files,
    }
    write_text_atomic(out / MANIFEST, strict_json(manifest, indent=2) + "\n")
    return manifest


def calibrate_unknown(config: ConvertConfig, model: Any, spec: PreprocessSpec,
                      validation_probs: Any) -> tuple[PreprocessSpec, dict[str, Any] | None]:
    """``spec`` with its unknown threshold set, and how it was set (for the manifest).

    The threshold, on the scale of ``config.unknown_score``, keeps ``config.unknown_keep`` of the known
    pictures of ``config.unknown_calibration`` (its ``test/<class>/`` photos, framed as ``spec`` says, through
    ``model``: the exported network, test-time augmentation included), else of the validation images
    (``validation_probs``).
    ``unknown_keep=None`` stores none. Raises :class:`DatasetError` when the folder holds no known photo.
    """
    from cifar_edge.train import open_set

    if config.unknown_keep is None:
        return spec.merged({"unknown_threshold": None}), None
    spec = spec.merged({"unknown_score": config.unknown_score})
    if config.unknown_calibration:
        source = resolve_source(config.unknown_calibration, cache_dir=config.cache_dir, download=False, progress=False)
        photos = source.load("test", spec.labels, spec=spec)
        if not len(photos):
            raise DatasetError(f"--unknown-calibration {config.unknown_calibration}: no photos of the model's classes")
        probs, what = keras_probabilities(model, photos.images, spec), f"{len(photos)} photos of {config.unknown_calibration}"
    else:
        probs, what = validation_probs, f"{len(validation_probs)} validation images"
    threshold = open_set.calibrate_threshold(open_set.unknown_scores(probs, spec.unknown_score), config.unknown_keep)
    record = {"score": spec.unknown_score, "threshold": threshold, "keep": config.unknown_keep,
              "calibrated_on": portable_dataset(what)}
    return spec.merged({"unknown_threshold": threshold}), record


def _write_export(target: Path, data: bytes) -> None:
    """Write one exported file atomically, after removing the folder's manifest.

    The manifest is written last, so a conversion that stops half-way (an error, a full disk,
    SIGKILL) leaves complete files under their final names and no ``manifest.json``: the folder
    reads as an unfinished export, never as a finished one whose manifest lists other files.
    """
    with contextlib.suppress(FileNotFoundError):
        (target.parent / MANIFEST).unlink()
    write_bytes_atomic(target, data)


def parity(model: str, directory: str, *, data: str | None = None, cache_dir: str | None = None,
           limit: int | None = None, thresholds: Thresholds | None = None,
           progress: IO[str] | None = None, report: str | None = None) -> dict[str, Any]:
    """Compare every exported file in ``directory`` with the Keras model on the test split, or on every
    picture of a photo folder (``data``, see :mod:`cifar_edge.convert.photos`), and explain the differences.

    A file exported with test-time augmentation (its metadata's ``tta``) is compared with the Keras
    model wrapped the same way. Each file's row adds to the figures of :func:`compare` the flipped
    images and confidence drift (:func:`explain`) and, for an int8 TFLite file, the SNR of each layer
    against the float TFLite file beside it (or converted from the Keras model) (``layer_snr``); the
    result adds the top-1 agreement of the quantized files with each other (``cross_runtime``).
    ``report``: a folder for a contact sheet PNG of each file's flips and ``parity.json``.
    ``progress``: a stream to draw a bar over the files on. Raises :class:`EdgeSDKError` subclasses.
    """
    thresholds = thresholds or Thresholds()
    directory_path = Path(directory)
    exported = exported_files(directory_path)
    if not exported:
        raise EdgeSDKError(f"no exported models ({', '.join(FILE_NAMES)}) in {directory}")
    keras_model = load_keras_model(model)
    spec = load_spec_beside(model)
    test = load_parity_images(data, spec, cache_dir=cache_dir, limit=limit)
    report_dir = Path(report) if report is not None else None
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
    references: dict[str, Any] = {}
    quantized: dict[str, Any] = {}
    rows = []
    with progress_bar(len(exported), "parity", progress is not None, unit="file", file=progress) as bar:
        for fmt, path in exported:
            tta = _tta_of(path)
            if tta not in references:
                references[tta] = keras_probabilities(with_tta(keras_model, tta), test.images, spec)
            with Classifier(path) as clf:
                probs = clf.probabilities_batch(test.images)
                result = compare(clf, test.images, test.labels, references[tta], spec, probs=probs)
            why = explain(probs, references[tta], test.labels, spec.labels, test.files)
            row = {"format": fmt.name, "file": path.name, "bytes": path.stat().st_size, "tta": tta, **result,
                   "failures": judge(fmt.name, result, thresholds), **why}
            if fmt.quantized:
                quantized[path.name] = probs
            if fmt.name == "tflite-int8":
                row["layer_snr"] = _layer_snr(path, directory_path, keras_model, tta, test.images, spec)
            if report_dir is not None and why["flips"]:
                sheet = report_dir / f"{path.name}.flips.png"
                contact_sheet(test.images, why["flips"], sheet)
                row["contact_sheet"] = str(sheet)
            rows.append(row)
            bar.update()
    result = {"model": str(model), "directory": str(directory), "images": len(test.labels),
              "thresholds": vars(thresholds), "files": rows, "passed": all(not r["failures"] for r in rows),
              "data": test.describe(), "cross_runtime": cross_agreement(quantized)}
    if report_dir is not None:
        write_text_atomic(report_dir / "parity.json", strict_json(result, indent=2) + "\n")
    return result


def _layer_snr(path: Path, directory: Path, keras_model: Any, tta: str, images: Any, spec: PreprocessSpec) -> dict[str, Any]:
    """:func:`layer_snr` of the int8 TFLite file ``path`` against the float TFLite file beside it (same
    test-time augmentation), else one converted from the Keras model here, on up to ``SNR_IMAGES`` images
    spread over the set; ``{"reference", "error"}`` when LiteRT cannot compare them."""
    beside = directory / FORMATS["tflite"].file_name
    if beside.is_file() and _tta_of(beside) == tta:
        reference, origin = beside.read_bytes(), beside.name
    else:
        reference, origin = export.tflite_float(with_tta(keras_model, tta)), "converted from the Keras model"
    step = max(1, len(images) // SNR_IMAGES)
    inputs = spec.normalize(images[::step][:SNR_IMAGES])
    try:
        return {"reference": origin, **layer_snr(path.read_bytes(), reference, inputs)}
    except EdgeSDKError as exc:  # a diagnosis that cannot be made does not stop the parity check
        return {"reference": origin, "error": str(exc)}


def _tta_of(path: Path) -> str:
    """The test-time augmentation an export was built with (``none`` for files without the key)."""
    meta = read_metadata(path)
    tta = meta.extra.get("tta", "none") if meta is not None else "none"
    if tta not in TTA_MODES:
        raise EdgeSDKError(f"{path} was exported with test-time augmentation {tta!r}, unknown to this version")
    return tta


def load_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest.json of an export folder."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise EdgeSDKError(f"no {MANIFEST} in {directory}")
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = ["ConvertConfig", "convert", "load_manifest", "parity", "sha256_file"]
