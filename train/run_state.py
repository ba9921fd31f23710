"""Read a run's ``state.json`` for ``--resume``, checked against its schema before anything uses it.

The file is what ``cifar-edge train`` wrote, but it may have been damaged or edited since: every field is
checked for its type, its range and its presence (the nesting depth and the size too), and any problem is one
:class:`~cifar_edge.train.errors.RunStateError` naming the field and what to do. Importable without TensorFlow.
"""

from __future__ import annotations

import json
import math
import typing
from pathlib import Path
from typing import Any

from .catalog import model_names
from .errors import RunStateError

#: a state.json larger than this is refused unread (a 1,000-epoch run writes about 300 KB)
MAX_STATE_BYTES = 16 * 1024 * 1024
#: deepest nesting a state.json holds (state -> config -> extra -> ...): deeper is refused
MAX_DEPTH = 12

_FIX = "restore the file from a backup, or start a new run with another --out"

#: (low, high, low open, high open) of numeric options, as the command line checks them
_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "epochs": (1, math.inf, False, False), "batch_size": (1, math.inf, False, False),
    "lr": (0, 100, True, False), "momentum": (0, 1, False, True), "weight_decay": (0, 1, False, False),
    "warmup_epochs": (0, math.inf, False, False), "label_smoothing": (0, 1, False, True),
    "pad": (0, 64, False, False), "bias_lr_scale": (0, math.inf, True, False), "cutout": (0, 31, False, False),
    "distill_temperature": (0, math.inf, True, False), "distill_alpha": (0, 1, False, False),
    "val_size": (1, math.inf, False, False), "seed": (0, math.inf, False, False), "limit": (1, math.inf, False, False),
    "eval_limit": (1, math.inf, False, False), "patience": (1, math.inf, False, False),
    "outlier_fraction": (0, 1, False, False), "outlier_jpeg": (0, 100, False, False),
}
_CHOICES = {"optimizer": ("sgd", "adamw"), "schedule": ("cosine", "linear"), "resize": ("stretch", "center-crop")}
_REQUIRED_CONFIG = ("model", "epochs")


def load_state(path: str | Path, config_type: type) -> dict[str, Any]:
    """The run state in ``path``, checked: ``config`` against the fields of the dataclass ``config_type``
    (``TrainConfig``), and ``epochs_done``, ``history`` and the other keys ``train`` writes.

    Raises :class:`RunStateError` (an ``EdgeSDKError``) naming the file, the field and the fix when it cannot
    be read, is not JSON, is too large or too deeply nested, or a field is missing, of the wrong type or out
    of range.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_STATE_BYTES + 1)
    except OSError as exc:
        raise RunStateError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_STATE_BYTES:
        raise RunStateError(f"{path} is larger than {MAX_STATE_BYTES:,} bytes, so not a state.json train wrote; {_FIX}")
    try:
        state = json.loads(raw)
    except RecursionError:
        raise RunStateError(f"{path} is nested more than {MAX_DEPTH} levels deep; {_FIX}") from None
    except ValueError as exc:  # JSONDecodeError, and bytes that are not UTF-8
        raise RunStateError(f"{path} is not valid JSON ({exc}); {_FIX}") from None
    check_state(state, config_type, str(path))
    return state


def check_state(state: Any, config_type: type, name: str = "state.json") -> None:
    """Raise :class:`RunStateError` unless ``state`` is a valid run state (see :func:`load_state`)."""
    _check_depth(state, name)
    problem = _problem(state, config_type)
    if problem:
        raise RunStateError(f"{name}: {problem}; {_FIX}")


def _check_depth(value: Any, name: str) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise RunStateError(f"{name} is nested more than {MAX_DEPTH} levels deep; {_FIX}")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)


def _problem(state: Any, config_type: type) -> str | None:
    """What is wrong with ``state`` (the first problem found), or None."""
    if not isinstance(state, dict):
        return f"the file must hold a JSON object, not {_kind(state)}"
    for key in ("config", "epochs_done", "history"):
        if key not in state:
            return f"'{key}' is missing"
    problem = _config_problem(state["config"], config_type)
    if problem:
        return problem
    epochs_done = state["epochs_done"]
    if not _is_int(epochs_done) or epochs_done < 0:
        return f"'epochs_done' must be an integer >= 0, got {_show(epochs_done)}"
    history = state["history"]
    if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
        return f"'history' must be a list of objects (one per finished epoch), got {_kind(history)}"
    for i, row in enumerate(history):
        for key, value in row.items():
            if value is not None and not _is_number(value):
                return f"'history[{i}].{key}' must be a number or null, got {_show(value)}"
    if "best_val_accuracy" in state and not _is_number(state["best_val_accuracy"]):
        return f"'best_val_accuracy' must be a number, got {_show(state['best_val_accuracy'])}"
    best = state.get("best_epoch")
    if best is not None and (not _is_int(best) or not 1 <= best <= max(epochs_done, 1)):
        return f"'best_epoch' must be an integer from 1 to epochs_done ({epochs_done}), got {_show(best)}"
    wall = state.get("train_wall_s", 0.0)
    if not _is_number(wall) or not math.isfinite(wall) or wall < 0:
        return f"'train_wall_s' must be a number >= 0, got {_show(wall)}"
    distribution = state.get("distribution", {})
    if not isinstance(distribution, dict):
        return f"'distribution' must be an object, got {_kind(distribution)}"
    policy = distribution.get("dtype_policy", "float32")
    if not isinstance(policy, str):
        return f"'distribution.dtype_policy' must be a string, got {_show(policy)}"
    if "final_weights_sha256" in state and not isinstance(state["final_weights_sha256"], (str, type(None))):
        return f"'final_weights_sha256' must be a string, got {_show(state['final_weights_sha256'])}"
    return None


def _config_problem(config: Any, config_type: type) -> str | None:
    if not isinstance(config, dict):
        return f"'config' must be an object, got {_kind(config)}"
    for key in _REQUIRED_CONFIG:
        if key not in config:
            return f"'config.{key}' is missing"
    hints = typing.get_type_hints(config_type)
    for key, value in config.items():
        if key not in hints:
            continue  # a key of another version: ignored, as TrainConfig.from_dict does
        expected = _expected(hints[key])
        if not _matches(value, expected):
            return f"'config.{key}' must be {_describe(expected)}, got {_show(value)}"
        if key in _RANGES and value is not None:
            low, high, low_open, high_open = _RANGES[key]
            if not (math.isfinite(value) and (low < value if low_open else low <= value)
                    and (value < high if high_open else value <= high)):
                return (f"'config.{key}' must lie in {'(' if low_open else '['}{low:g}, {high:g}"
                        f"{')' if high_open else ']'}, got {_show(value)}")
        if key in _CHOICES and value is not None and value not in _CHOICES[key]:
            return f"'config.{key}' must be one of {', '.join(_CHOICES[key])}, got {_show(value)}"
    if config["model"] not in model_names():
        return f"'config.model' must name a registered model ({', '.join(model_names())}), got {_show(config['model'])}"
    return None


def _expected(hint: Any) -> tuple[type, ...]:
    """The JSON types a field annotation admits: ``int | None`` -> (int, NoneType)."""
    args = typing.get_args(hint)
    options = args if args and typing.get_origin(hint) is not dict else (hint,)
    return tuple(typing.get_origin(o) or o for o in options)


def _matches(value: Any, expected: tuple[type, ...]) -> bool:
    if value is None:
        return type(None) in expected
    if isinstance(value, bool):
        return bool in expected
    if isinstance(value, int):
        return int in expected or float in expected
    if isinstance(value, float):
        return float in expected
    return any(isinstance(value, kind) for kind in expected if kind not in (int, float, bool, type(None)))


def _describe(expected: tuple[type, ...]) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "an object",
             type(None): "null"}
    return " or ".join(names.get(kind, kind.__name__) for kind in expected)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number" if _is_number(value) else type(value).__name__)


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, (dict, list)) else _kind(value)
    return text if len(text) <= 60 else text[:57] + "..."
