"""The one preprocessing specification shared by training, conversion and the SDK.

A :class:`PreprocessSpec` says how RGB pixels become the model's input tensor and what its outputs mean; it
is embedded as JSON in every exported model, so nothing downstream has to guess it. The normalization is
``(pixel - mean) / std`` per channel, ``mean`` and ``std`` in pixel units (0-255, MediaPipe's
``norm_mean``/``norm_std``): ``mean=0, std=255`` maps pixels to [0, 1].
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .errors import MetadataError
from .resize import RESIZE_MODES

SPEC_VERSION = 1
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_LAYOUTS = ("NHWC", "NCHW")
_COLOR_ORDERS = ("RGB", "BGR")
#: scores the "unknown" rule can compare with its threshold (:func:`unknown_score`); a file without the key
#: uses the first, ``cifar-edge convert`` stores the second unless told otherwise
UNKNOWN_SCORES = ("max-probability", "certainty")


@dataclass(frozen=True)
class PreprocessSpec:
    """How to turn an RGB uint8 image into the model input, and what the outputs mean. Raises
    :class:`MetadataError` naming every field it refuses."""

    labels: tuple[str, ...] = CIFAR10_CLASSES
    input_height: int = 32
    input_width: int = 32
    layout: str = "NHWC"
    color_order: str = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (255.0, 255.0, 255.0)
    resize: str = "stretch"
    #: the "unknown" rule: an image whose :data:`unknown_score` is below this threshold shows none of the
    #: labels (``None`` or 0: every image gets a label); calibrated by ``cifar-edge convert``
    unknown_threshold: float | None = None
    unknown_score: str = "max-probability"
    version: int = field(default=SPEC_VERSION)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
        object.__setattr__(self, "mean", _three_floats("mean", self.mean))
        object.__setattr__(self, "std", _three_floats("std", self.std))
        problems = []
        if not self.labels:
            problems.append("labels is empty")
        if len(set(self.labels)) != len(self.labels):
            problems.append("labels contain duplicates")
        for name in ("input_height", "input_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if self.layout not in _LAYOUTS:
            problems.append(f"layout must be one of {_LAYOUTS}, got {self.layout!r}")
        if self.color_order not in _COLOR_ORDERS:
            problems.append(f"color_order must be one of {_COLOR_ORDERS}, got {self.color_order!r}")
        if self.resize not in RESIZE_MODES:
            problems.append(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        threshold = self.unknown_threshold
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                      or not 0.0 <= threshold <= 1.0):
            problems.append(f"unknown_threshold must be a number in [0, 1] or null, got {self.unknown_threshold!r}")
        if self.unknown_score not in UNKNOWN_SCORES:
            problems.append(f"unknown_score must be one of {UNKNOWN_SCORES}, got {self.unknown_score!r}")
        if any(s == 0 for s in self.std):
            problems.append("std must not contain 0")
        if self.version != SPEC_VERSION:
            problems.append(f"unsupported spec version {self.version!r} (this SDK reads {SPEC_VERSION})")
        if problems:
            raise MetadataError("invalid preprocessing spec: " + "; ".join(problems))

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return len(self.labels)

    def is_unknown(self, probabilities: Sequence[float]) -> bool:
        """True when these class probabilities make the picture "unknown" (:func:`unknown_score` < the threshold)."""
        return self.unknown_threshold is not None and unknown_score(probabilities, self.unknown_score) < self.unknown_threshold

    @property
    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` of the model input."""
        return (self.input_height, self.input_width)

    def normalize(self, pixels: Any) -> Any:
        """Map RGB pixels in 0-255 (numpy or TensorFlow, channels last) to model input values: the
        channels put in ``color_order``, then ``(pixel - mean) / std`` per channel (``mean`` and ``std``
        in the model's channel order).

        Arithmetic and slicing only, so the same function serves numpy in the SDK and ``tf.data`` in
        training, Keras evaluation, calibration and validation alike. The result stays channels last.
        """
        if self.color_order == "BGR":
            pixels = pixels[..., ::-1]
        mean, inv_std = self._affine
        if isinstance(pixels, np.ndarray):
            return (pixels.astype(np.float32, copy=False) - mean) * inv_std
        return (pixels - mean) * inv_std

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        """The model input's shape for ``batch`` images in the spec's ``layout``."""
        h, w = self.input_size
        return (batch, h, w, 3) if self.layout == "NHWC" else (batch, 3, h, w)

    def require_channels_last(self, what: str) -> None:
        """Raise :class:`MetadataError` unless ``layout`` is ``NHWC``: Keras models (``what`` names one)
        take channels-last inputs, so a spec saying otherwise does not describe them."""
        if self.layout != "NHWC":
            raise MetadataError(f"{what}: the spec says layout {self.layout} but Keras models take NHWC inputs")

    @cached_property
    def _affine(self) -> tuple[np.ndarray, np.ndarray]:
        """``mean`` and ``1 / std`` as float32 arrays, built once per spec (normalize is on the hot path)."""
        return np.asarray(self.mean, dtype=np.float32), np.asarray([1.0 / s for s in self.std], dtype=np.float32)

    def merged(self, overrides: PreprocessSpec | Mapping[str, Any] | None) -> PreprocessSpec:
        """This spec with ``overrides`` applied key by key (as timm's ``resolve_data_config`` merges a
        model's config): a mapping replaces only the keys it names, a whole :class:`PreprocessSpec`
        replaces everything, ``None`` changes nothing. ``labels=``, ``resize=`` and ``preprocess=`` of
        the SDK all go through here, so ``{"resize": "center-crop"}`` keeps the model's own labels.
        Raises :class:`MetadataError` for an unknown key or a value the spec refuses."""
        if overrides is None:
            return self
        if isinstance(overrides, PreprocessSpec):
            return overrides
        if not isinstance(overrides, Mapping):
            raise MetadataError(f"preprocessing overrides must be a PreprocessSpec or a dict, got {type(overrides).__name__}")
        changes = {k: list(v) if k == "labels" and not isinstance(v, (str, bytes)) else v for k, v in overrides.items()}
        return PreprocessSpec.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {**asdict(self), "labels": list(self.labels), "mean": list(self.mean), "std": list(self.std)}

    def to_json(self) -> str:
        """Serialize as compact JSON."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any) -> PreprocessSpec:
        """Build from a dictionary; raise :class:`MetadataError` on anything malformed."""
        if not isinstance(data, dict):
            raise MetadataError(f"preprocessing spec must be a JSON object, got {type(data).__name__}")
        unknown = sorted(map(str, set(data) - set(cls.__dataclass_fields__)))
        if unknown:
            raise MetadataError(f"preprocessing spec has unknown keys: {', '.join(unknown)}")
        if "labels" in data and not isinstance(data["labels"], list):
            raise MetadataError("preprocessing spec 'labels' must be a list of strings")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise MetadataError(f"invalid preprocessing spec: {exc}") from exc

    @classmethod
    def from_metadata_dict(cls, data: Any) -> tuple[PreprocessSpec, dict[str, Any]]:
        """The spec embedded in a model, and the keys this SDK does not know (from a newer converter of
        the same spec version: ignored). Raises :class:`MetadataError` if malformed or of another version."""
        if not isinstance(data, dict):
            raise MetadataError(f"preprocessing spec must be a JSON object, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        if data.get("version", SPEC_VERSION) != SPEC_VERSION:
            raise MetadataError(f"unsupported spec version {data.get('version')!r}: this SDK reads version "
                                f"{SPEC_VERSION} (use a cifar-edge release that reads it)")
        spec = cls.from_dict({k: v for k, v in data.items() if k in known})
        return spec, {k: v for k, v in data.items() if k not in known}

    @classmethod
    def from_json(cls, text: str | bytes) -> PreprocessSpec:
        """Parse JSON text; raise :class:`MetadataError` if it is not a valid spec."""
        return cls.from_dict(parse_json(text, "preprocessing spec"))


def parse_json(text: str | bytes, what: str) -> Any:
    """``json.loads`` raising :class:`MetadataError` that names ``what`` on bad JSON (``NaN``, ``Infinity``, ``1e400`` too)."""
    try:
        return json.loads(text, parse_constant=_finite_number, parse_float=_finite_number)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MetadataError(f"{what} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise MetadataError(f"{what} is not valid JSON: nested too deeply") from None


def _finite_number(text: str) -> float:
    if math.isfinite(value := float(text)):  # strict_json writes NaN/Infinity as null: they would not round-trip
        return value
    raise ValueError(f"{text} is not a finite number")


def finite_tree(value: Any) -> Any:
    """A copy of a JSON-like value with NaN and infinite floats replaced by None (JSON ``null``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_tree(v) for v in value]
    if hasattr(value, "dtype") and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalars
        return finite_tree(value.item())
    return value


def strict_json(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` that never writes ``NaN``/``Infinity`` (they become ``null``), as strict parsers require."""
    return json.dumps(finite_tree(value), allow_nan=False, **kwargs)


def unknown_score(probabilities: Sequence[float], rule: str) -> float:
    """A picture's "unknown" score in [0, 1] (higher: more like a class): ``max-probability`` the top probability,
    ``certainty`` ``1 - H / ln(classes)``, ``H`` the entropy of the probabilities renormalized to sum 1 (0: an even spread
    or none, 1: one class). Plain Python: cheaper than numpy for ten numbers. Raises :class:`MetadataError` otherwise."""
    if rule == "max-probability":
        return float(max(probabilities))
    if rule != "certainty":
        raise MetadataError(f"unknown_score must be one of {UNKNOWN_SCORES}, got {rule!r}")
    total = sum(v for v in probabilities if v > 0)
    if len(probabilities) < 2 or total <= 0:
        return float(total > 0)  # a single class is certain; no probability at all is an even spread
    entropy = -sum(v / total * math.log(v / total) for v in probabilities if v > 0)
    return min(1.0, max(0.0, 1.0 - entropy / math.log(len(probabilities))))


def _three_floats(name: str, value: Any) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise MetadataError(f"preprocessing spec '{name}' must be 3 numbers, got {value!r}") from exc
    if len(values) != 3 or not all(np.isfinite(values)):
        raise MetadataError(f"preprocessing spec '{name}' must be 3 finite numbers, got {value!r}")
    return values  # type: ignore[return-value]
