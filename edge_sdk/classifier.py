"""The SDK's one class: :class:`Classifier`, over LiteRT or ONNX Runtime, chosen by file suffix.

>>> from edge_sdk import Classifier
>>> clf = Classifier("model_int8.tflite", top_k=3)   # or a bundled model: Classifier("edge"), Classifier()
>>> result = clf.classify("cat.jpg")
>>> result.categories[0].label, result.categories[0].score

Labels and preprocessing come from the model file (:func:`resolve_spec` lists the sources in order); ``labels=`` and
``preprocess=`` serve models without metadata. A classifier is safe to share between threads: every backend serializes
or is thread-safe itself, and preprocessing keeps no shared state.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from pathlib import Path
from time import perf_counter
from typing import Any, NamedTuple

import numpy as np

from .bundled import bundled_name, resolve_model
from .encoder import InputEncoder
from .errors import ClosedError, EdgeSDKError, InferenceError, InvalidArgumentError, InvalidImageError, MetadataError, ModelLoadError
from .images import describe
from .inputs import DEFAULT_COLOR, to_rgb_array
from .metadata import ModelMetadata, parse_model_metadata
from .runtimes import Backend, load_model
from .spec import PreprocessSpec
from .standard_metadata import standard_spec

#: Images decoded, encoded and run per runtime call by :meth:`Classifier.classify_batch`: its memory
#: (pixels, input tensor, the runtime's buffers) is that of one chunk whatever the number of images.
BATCH_CHUNK = 64
#: up to this many classes the scores are ranked in Python (cheaper than numpy for a few values)
RANK_IN_PYTHON_UP_TO = 64
#: what :meth:`Classifier.classify_batch` does with an image it cannot use: raise, or give ``None`` in its place
BATCH_ERRORS = ("raise", "skip")
_UINT8 = np.dtype(np.uint8)


class Category(NamedTuple):
    """One class of a result: its index in the model output, its label and its probability."""

    index: int
    label: str
    score: float


@dataclass(frozen=True)
class Timing:
    """Milliseconds spent per stage of one call."""

    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms

    def __repr__(self) -> str:  # milliseconds to the microsecond: the fields keep their full value
        return (f"Timing(preprocess_ms={self.preprocess_ms:.3f}, inference_ms={self.inference_ms:.3f}, "
                f"postprocess_ms={self.postprocess_ms:.3f})")


@dataclass(frozen=True)
class ClassificationResult:
    """Categories sorted by score (highest first), after top-k, threshold and allow/deny lists.

    ``unknown`` is True when the model's unknown score (the file's: certainty or best probability, before any
    filter) is below its unknown threshold: the picture shows none of the model's classes, and the categories
    are only the model's best guesses. ``label`` gives the verdict in one value.
    """

    categories: tuple[Category, ...]
    timing: Timing
    unknown: bool = False

    @property
    def top(self) -> Category | None:
        """The best category, or None when every class was filtered out."""
        return self.categories[0] if self.categories else None

    @property
    def label(self) -> str | None:
        """The verdict: the best category's label, ``None`` when the picture is unknown (or nothing passed the filters)."""
        return None if self.unknown or not self.categories else self.categories[0].label


def _check_top_k(top_k: int) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
        raise InvalidArgumentError(f"top_k must be an integer >= 1, got {top_k!r}")


def _check_probability(name: str, value: object, hint: str = "") -> None:
    """Raise :class:`InvalidArgumentError` unless ``value`` is a real number in [0, 1] (``hint`` says what else is allowed)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise InvalidArgumentError(f"{name} must lie in [0, 1]{hint}, got {value!r}")


def resolve_spec(data: bytes, path: Path, backend: Backend, *, labels: Sequence[str] | None = None,
                 preprocess: PreprocessSpec | dict[str, Any] | None = None, resize: str | None = None,
                 unknown_threshold: float | None = None) -> tuple[PreprocessSpec, ModelMetadata | None]:
    """The preprocessing spec of the model file ``data`` (read from ``path``, loaded as ``backend``), and the
    cifar-edge metadata the file carries (``None`` if none).

    The spec is the first of these that the caller or the file gives:

    1. ``preprocess=`` as a whole :class:`PreprocessSpec`;
    2. the cifar-edge metadata embedded in the file (:mod:`edge_sdk.metadata`);
    3. the standard TFLite Model Metadata that MediaPipe Tasks reads (:mod:`edge_sdk.standard_metadata`);
    4. the defaults (RGB scaled to [0, 1]) at the size of the model's input, if ``labels=`` (or
       ``preprocess={"labels": [...]}``) names the classes;

    then ``preprocess=`` as a dict, ``labels=``, ``resize=`` and ``unknown_threshold=`` replace the keys they
    name (:meth:`PreprocessSpec.merged`). Raises :class:`MetadataError` naming ``path`` when metadata is
    malformed or lists another number of labels than the model has outputs, or when no source names the labels.
    """
    outputs = backend.num_outputs or None if labels is None else None  # labels= replaces the file's: no count
    metadata = parse_model_metadata(data, path, outputs)
    if isinstance(preprocess, PreprocessSpec):
        spec: PreprocessSpec | None = preprocess
    elif metadata is not None:
        spec = metadata.spec
    else:
        try:
            spec = standard_spec(data, backend.input_shape, path, None if labels is None else tuple(labels), outputs)
        except MetadataError:
            if preprocess is None:  # nothing else says how to feed it
                raise
            spec = None
        if spec is None:
            if labels is None and not (isinstance(preprocess, dict) and "labels" in preprocess):
                raise MetadataError(f"{path} carries no cifar-edge metadata; pass labels= (and preprocess= if it does "
                                    "not take RGB scaled to [0, 1]); it has no standard TFLite metadata either")
            shape = tuple(backend.input_shape)
            channels_first = len(shape) == 4 and shape[1] == 3 and shape[3] != 3
            h, w = (shape[2], shape[3]) if channels_first else (shape[1], shape[2])
            spec = PreprocessSpec(input_height=int(h), input_width=int(w), layout="NCHW" if channels_first else "NHWC")
    named = {key: value for key, value in (("labels", labels), ("resize", resize),
                                           ("unknown_threshold", unknown_threshold)) if value is not None}
    return spec.merged(preprocess).merged(named), metadata


class Classifier:
    """Classify images with a ``.tflite`` or ``.onnx`` model, or a bundled one by name (``"default"``, ``"edge"``:
    :data:`edge_sdk.bundled.BUNDLED`; ``None`` is ``"default"``).

    Raises :class:`ModelLoadError` / :class:`MetadataError` / :class:`BackendUnavailableError` at load,
    :class:`InvalidImageError` for an image it cannot use and :class:`InferenceError` when the runtime
    fails to run the model; every one an :class:`EdgeSDKError`.

    ``resize`` (:data:`~edge_sdk.resize.RESIZE_MODES`) overrides how the model file frames a picture;
    ``unknown_threshold`` overrides the model file's "unknown" threshold, on its ``unknown_score``'s scale (``0``
    turns the verdict off; ``None``: the file's, see :attr:`ClassificationResult.unknown`).
    """

    #: images per runtime call in :meth:`classify_batch` (see :data:`BATCH_CHUNK`)
    batch_chunk: int = BATCH_CHUNK

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        backend: str | None = None,
        num_threads: int | None = None,
        top_k: int = 3,
        score_threshold: float = 0.0,
        allowlist: Iterable[str] | None = None,
        denylist: Iterable[str] | None = None,
        resize: str | None = None,
        labels: Sequence[str] | None = None,
        preprocess: PreprocessSpec | dict[str, Any] | None = None,
        unknown_threshold: float | None = None,
    ) -> None:
        self.model_path = resolve_model(model, backend)
        _check_top_k(top_k)
        if unknown_threshold is not None:
            _check_probability("unknown_threshold", unknown_threshold, " (0: off) or be None (the model's)")
        if num_threads is not None and not 1 <= num_threads <= 1024:
            raise InvalidArgumentError(f"num_threads must lie in [1, 1024] (or None for the runtime's choice), got {num_threads}")
        _check_probability("score_threshold", score_threshold)
        if allowlist is not None and denylist is not None:
            raise InvalidArgumentError("give allowlist or denylist, not both")
        self._backend, data = load_model(self.model_path, backend, num_threads)  # read once: runtime and metadata
        self.spec, self.metadata = resolve_spec(data, self.model_path, self._backend, labels=labels, resize=resize,
                                                preprocess=preprocess, unknown_threshold=unknown_threshold)
        del data
        self._check_model_matches_spec()
        self._encoder = InputEncoder(self.spec, self._backend.input_dtype, self._backend.input_quantization)
        self.top_k = top_k
        self.score_threshold = score_threshold
        self._allowed = self._allowed_classes(allowlist, denylist)
        self._pixels_shape = (*self.spec.input_size, 3)

    def _check_model_matches_spec(self) -> None:
        shape = tuple(self._backend.input_shape)
        want = self.spec.input_shape(batch=shape[0] if shape else 1)
        if len(shape) != 4 or 3 not in (shape[1], shape[3]):
            raise ModelLoadError(f"{self.model_path}: the SDK supports RGB image inputs of shape (N, H, W, 3) or, with "
                                 f"layout NCHW in the spec, (N, 3, H, W); this model takes {shape}")
        if any(got != wanted and got != -1 for got, wanted in zip(shape[1:], want[1:])):
            other = "NCHW" if self.spec.layout == "NHWC" else "NHWC"
            hint = (f" (a {other} model: give it layout {other} in preprocess=)"
                    if self.spec.merged({"layout": other}).input_shape()[1:] == shape[1:] else "")
            raise MetadataError(f"{self.model_path}: the spec says input {want[1:]} ({self.spec.layout}) but the model "
                                f"takes {shape[1:]}{hint}")
        outputs = self._backend.num_outputs
        if outputs and outputs != self.spec.num_classes:
            raise MetadataError(f"{self.model_path}: {self.spec.num_classes} labels but the model has {outputs} "
                                "outputs")

    def _allowed_classes(self, allowlist: Iterable[str] | None, denylist: Iterable[str] | None) -> list[bool] | None:
        """Which classes results may show (None: all of them)."""
        names = allowlist if allowlist is not None else denylist
        if names is None:
            return None
        names = list(names)
        unknown = sorted(set(names) - set(self.spec.labels))
        if unknown:
            raise InvalidArgumentError(f"unknown label(s) {', '.join(unknown)}; the model knows: {', '.join(self.spec.labels)}")
        allowed = [(label in names) == (allowlist is not None) for label in self.spec.labels]
        return None if all(allowed) else allowed

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels

    @property
    def backend_name(self) -> str:
        return self._backend.name

    def describe(self) -> dict[str, Any]:
        """What the runtime reports of the loaded model: backend, input shape and dtype, output dtype and
        count, and the input/output quantization (scale, zero point) of quantized files."""
        return self._backend.describe()

    @cached_property
    def model_name(self) -> str:
        """The name to show: a bundled model's own name (``"edge"``, whatever network its metadata names),
        else the model name in the file's metadata, else the file name without its suffix."""
        return bundled_name(self.model_path) or (self.metadata.model_name if self.metadata else self.model_path.stem)

    def _pixels(self, image: Any, color: str) -> np.ndarray:
        if type(image) is np.ndarray and image.dtype is _UINT8 and image.shape == self._pixels_shape and color == "rgb":
            return image  # already RGB pixels of the input size: nothing to check, convert or copy
        h, w, _ = self._pixels_shape
        return to_rgb_array(image, h, w, resize=self.spec.resize, color=color)

    def preprocess(self, image: Any, color: str = DEFAULT_COLOR) -> np.ndarray:
        """The normalized float32 input of one image (before any int8 quantization), in the model's layout."""
        return self._encoder.normalize(self._pixels(image, color)[None])

    def encode(self, image: Any, *, color: str = DEFAULT_COLOR) -> np.ndarray:
        """The exact ``(1, H, W, 3)`` tensor the runtime receives for one image (int8 for int8 models)."""
        return self._encoder.encode(self._pixels(image, color)[None])

    def classify(self, image: Any, *, color: str = DEFAULT_COLOR, top_k: int | None = None,
                 score_threshold: float | None = None) -> ClassificationResult:
        """Classify one image (path, bytes, PIL image or numpy array).

        ``top_k`` / ``score_threshold`` override the constructor's values (3 and 0.0 unless given
        there) for this call. Raises :class:`InvalidImageError` for an image it cannot use,
        :class:`InferenceError` if the runtime fails, :class:`InvalidArgumentError` for a bad option.
        """
        top_k, score_threshold = self._overrides(top_k, score_threshold)
        start = perf_counter()
        return self._results(self.encode(image, color=color), start, top_k, score_threshold)[0]

    def classify_batch(self, images: Iterable[Any], *, color: str = DEFAULT_COLOR, top_k: int | None = None,
                       score_threshold: float | None = None, errors: str = "raise") -> list[ClassificationResult | None]:
        """Classify several images, :attr:`batch_chunk` at a time (one runtime call per chunk, or per image
        if the model is fixed to batch 1).

        Memory stays bounded whatever the number of images (``images`` may be a generator): only one
        chunk of pixels and tensors exists at a time and the runtime's buffers are sized for one chunk.
        Each result's timing is the per-image mean of its chunk. ``top_k`` / ``score_threshold``
        override the constructor's values for this call.

        ``errors="raise"`` (the default) raises :class:`InvalidImageError` naming the position of the first
        image it cannot use, and returns nothing; ``errors="skip"`` gives ``None`` in that image's place and
        classifies the others (``classify(image)`` of a ``None`` position raises its error). Either way a
        runtime failure raises :class:`InferenceError`, and an ``errors`` value other than these two
        :class:`InvalidArgumentError`.
        """
        if errors not in BATCH_ERRORS:
            raise InvalidArgumentError(f"errors must be one of {', '.join(map(repr, BATCH_ERRORS))}, got {errors!r}")
        top_k, score_threshold = self._overrides(top_k, score_threshold)
        results: list[ClassificationResult | None] = []
        for chunk in self._chunks(images):
            start = perf_counter()  # decoding counts in the preprocess time of the images classified
            pixels = self._decode(chunk, len(results), color, skip=errors == "skip")
            good = [p for p in pixels if p is not None]
            done = iter(self._results(self._encoder.encode(np.stack(good)), start, top_k, score_threshold)
                        if good else ())
            results.extend(None if p is None else next(done) for p in pixels)
        return results

    def probabilities(self, image: Any, *, color: str = DEFAULT_COLOR) -> np.ndarray:
        """All class probabilities for one image, in label order."""
        return self._infer(self.encode(image, color=color))[0]

    def probabilities_batch(self, images: Iterable[Any], *, color: str = DEFAULT_COLOR) -> np.ndarray:
        """All class probabilities ``(N, classes)`` of several images, in label order, computed
        :attr:`batch_chunk` at a time as :meth:`classify_batch` does. Raises as :meth:`classify_batch`."""
        rows = [np.zeros((0, self.spec.num_classes), np.float32)]
        done = 0
        for chunk in self._chunks(images):
            rows.append(self._infer(self._encoder.encode(np.stack(self._decode(chunk, done, color)))))
            done += len(chunk)
        return np.concatenate(rows)

    def _chunks(self, images: Iterable[Any]) -> Iterator[list[Any]]:
        """``images`` in lists of :attr:`batch_chunk` (the last one shorter). Raises
        :class:`InvalidArgumentError` for a ``batch_chunk`` below 1."""
        if self.batch_chunk < 1:
            raise InvalidArgumentError(f"batch_chunk must be >= 1, got {self.batch_chunk}")
        images = iter(images)
        while chunk := list(islice(images, self.batch_chunk)):
            yield chunk

    def _decode(self, images: list[Any], first: int, color: str, skip: bool = False) -> list[Any]:
        """The RGB pixels of each image of a chunk. One it cannot use is ``None`` when ``skip``, else an
        :class:`InvalidImageError` naming its position (``first``: that of the chunk's first image)."""
        pixels = []
        for i, image in enumerate(images):
            try:
                pixels.append(self._pixels(image, color))
            except InvalidImageError as exc:
                if not skip:
                    raise InvalidImageError(f"image {first + i} of the batch: {exc}") from exc
                pixels.append(None)
        return pixels

    def _results(self, x: np.ndarray, start: float, top_k: int, threshold: float) -> list[ClassificationResult]:
        """The result of each image of the encoded batch ``x`` (preprocessing began at ``start``); each timing
        is the per-image mean. The one path from an input tensor to results."""
        t1 = perf_counter()
        probs = self._infer(x)
        t2 = perf_counter()
        rows = probs.tolist()
        verdicts = [(self._categories(p, top_k, threshold), self.spec.is_unknown(p)) for p in rows]
        n, t3 = len(rows), perf_counter()
        timing = Timing(1e3 * (t1 - start) / n, 1e3 * (t2 - t1) / n, 1e3 * (t3 - t2) / n)
        return [ClassificationResult(categories, timing, unknown) for categories, unknown in verdicts]

    def _infer(self, x: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, classes)`` for an encoded batch: one runtime call, or one per image for a batch-1 model.

        Any exception out of the runtime becomes :class:`InferenceError` naming the model, and so does an
        output other than ``(N, classes)`` float scores.
        """
        backend = self._backend
        try:
            if len(x) == 1 or backend.supports_batch:
                raw = backend.invoke(x)
            else:
                raw = np.concatenate([backend.invoke(x[i : i + 1]) for i in range(len(x))])
            probs = np.asarray(backend.output_to_probabilities(raw))
        except EdgeSDKError:
            raise
        except Exception as exc:  # onnxruntime's and LiteRT's own errors, MemoryError, ...
            raise InferenceError(f"{self.model_path}: {backend.name} failed to run the model: {describe(exc)}") from exc
        if probs.shape != (len(x), self.spec.num_classes) or probs.dtype.kind != "f":
            raise InferenceError(f"{self.model_path}: the model returned {probs.dtype} scores of shape {probs.shape} "
                                 f"for {len(x)} image(s); expected ({len(x)}, {self.spec.num_classes}) float scores")
        return probs

    def _overrides(self, top_k: int | None, score_threshold: float | None) -> tuple[int, float]:
        """This call's ``(top_k, score_threshold)``: the given values (checked) or the constructor's."""
        if top_k is not None:
            _check_top_k(top_k)
        if score_threshold is not None:
            _check_probability("score_threshold", score_threshold)
        return (self.top_k if top_k is None else top_k,
                self.score_threshold if score_threshold is None else score_threshold)

    def _categories(self, scores: list[float], top_k: int, threshold: float) -> tuple[Category, ...]:
        """The top-k categories of one row of scores (Python floats), best first (ties in class order), after
        the filters. Raises :class:`InvalidImageError` when a score is NaN or infinite."""
        total = sum(scores)
        if total - total != 0.0:  # NaN for a NaN or an infinity among them: np.isfinite(probs).all() is False
            raise InvalidImageError("the model produced non-finite scores for this input")
        if len(scores) <= RANK_IN_PYTHON_UP_TO:  # a stable sort, as np.argsort(-probs, kind="stable")
            order = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)
        else:
            order = np.argsort(-np.asarray(scores), kind="stable").tolist()
        labels, allowed = self.spec.labels, self._allowed
        picked = []
        for i in order:
            if (allowed is not None and not allowed[i]) or scores[i] < threshold:
                continue
            picked.append(Category(i, labels[i], scores[i]))
            if len(picked) == top_k:
                break
        return tuple(picked)

    def close(self) -> None:
        """Release the runtime; any later call raises :class:`ClosedError`."""
        self._backend = _ClosedBackend()

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Classifier({str(self.model_path)!r}, backend={self.backend_name!r}, labels={len(self.labels)})"


class _ClosedBackend(Backend):
    name = "closed"

    def invoke(self, tensor: np.ndarray) -> np.ndarray:
        raise ClosedError("this Classifier was closed; create a new one to classify again")
