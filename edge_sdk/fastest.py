"""Which file of a bundled model runs fastest on this machine (:func:`rank`): timed once (:func:`measure`), kept in this
process and in ``fastest-NAME.json`` in ``$CIFAR_EDGE_CACHE``, else ``$XDG_CACHE_HOME/cifar-edge``, else
``~/.cache/cifar-edge``, under :func:`cache_key` (an unreadable, over-64-KiB or stale file is timed again).
``CIFAR_EDGE_MEASURE=0`` turns timing off: the files keep their ``BUNDLED`` order."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from .runtimes import available_backends, load_model

MAX_CACHE_BYTES, WARMUP, CALLS, FAILED, CPUINFO = 64 * 1024, 5, 30, 1e9, Path("/proc/cpuinfo")
_ranked: dict[tuple, tuple[list[str], str]] = {}  # (name, candidates) -> (file names fastest first, source)


def rank(name: str, candidates: list[tuple[Path, str]]) -> tuple[list[str], str]:
    """The file names of ``candidates`` (``(file, backend)`` of bundled model ``name``) fastest first, and where that
    order came from (``"measured now"``, ``"cached in PATH"`` or ``"file order (...)"``). Raises nothing."""
    names, memo = [path.name for path, _ in candidates], (name, tuple(candidates))
    if os.environ.get("CIFAR_EDGE_MEASURE", "").strip().lower() in ("0", "off", "no", "false") or len(names) < 2:
        return names, "file order (" + ("CIFAR_EDGE_MEASURE=0)" if len(names) > 1 else "one runnable file)")
    if memo not in _ranked:
        path = key = entry = None
        with contextlib.suppress(OSError, RuntimeError, ValueError, RecursionError):  # no cache, or one not to trust
            env = os.environ.get  # Path.home() raises RuntimeError where no home folder is known
            path = Path(env("CIFAR_EDGE_CACHE") or Path(env("XDG_CACHE_HOME") or Path.home() / ".cache") / "cifar-edge")
            path, key = path / f"fastest-{name}.json", cache_key(name, candidates)
            with path.open("rb") if path.is_file() else contextlib.nullcontext() as f:  # a FIFO is no file
                data = f.read(MAX_CACHE_BYTES + 1) if f else b""
            entry = json.loads(data) if len(data) <= MAX_CACHE_BYTES else None  # b"" is no JSON either
        order = entry.get("order") if isinstance(entry, dict) and key and entry.get("key") == key else None
        if isinstance(order, list) and sorted(order, key=str) == sorted(names):
            _ranked[memo] = order, f"cached in {path}"
        else:
            ms = measure(candidates)
            _ranked[memo] = sorted(names, key=ms.__getitem__), "measured now"
            if key:  # a temporary file renamed over the cache file; an unwritable folder means no cache file
                tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
                with contextlib.suppress(OSError):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp.write_text(json.dumps({"key": key, "order": _ranked[memo][0], "ms": ms}), encoding="utf-8")
                    os.replace(tmp, path)
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)
    return _ranked[memo]


def measure(candidates: list[tuple[Path, str]]) -> dict[str, float]:
    """The median milliseconds of a call of each candidate, by file name (:data:`FAILED` where it cannot load or run):
    one thread, batch 1, an input of its dtype and shape, :data:`WARMUP` calls then :data:`CALLS` timed, in turns."""
    models, times = {}, {path.name: [] for path, _ in candidates}
    for path, backend in candidates:
        with contextlib.suppress(Exception):  # a file that cannot load is ranked last; opening it says why
            model = load_model(path, backend, num_threads=1)[0]
            x = np.random.default_rng(0).integers(-100, 100, [max(d, 1) for d in model.input_shape])
            models[path.name] = model, (x / 100 if model.input_dtype.kind == "f" else x).astype(model.input_dtype)
    for _ in range(WARMUP + CALLS):
        for name, (model, x) in models.items():
            start = time.perf_counter()
            with contextlib.suppress(Exception):
                model.invoke(x)
                times[name].append(1e3 * (time.perf_counter() - start))
    return {name: float(np.median(t[WARMUP:])) if len(t) == WARMUP + CALLS else FAILED for name, t in times.items()}


def cache_key(name: str, candidates: list[tuple[Path, str]]) -> str:
    """A digest of the model, each file's sha256 and runtime version, the architecture and the CPU's model and flags.
    Raises :class:`OSError` when a model file or ``/proc/cpuinfo`` cannot be read."""
    cpu = CPUINFO.read_text(encoding="utf-8", errors="replace").split("\n\n")[0] if CPUINFO.is_file() else ""
    facts = [name, platform.system(), platform.machine()] + [line for line in cpu.splitlines() if line.split(":")[
        0].strip().lower() in ("model name", "hardware", "cpu implementer", "cpu part", "flags", "features")]
    for path, backend in candidates:
        dists = metadata.distributions(name=available_backends()[backend].replace("_", "-"))
        facts += [path.name, hashlib.sha256(path.read_bytes()).hexdigest(), backend, [d.version for d in dists]]
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()
