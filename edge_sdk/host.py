"""Which int8 file of a bundled model runs fastest on this CPU: a fixed, cached rule from its architecture and
its ``/proc/cpuinfo`` flags (the measurements behind it: the SDK guide, docs/sdk.md). ``.onnx`` on x86 without
VNNI (ONNX Runtime's int8 kernels win there; an x86 CPU whose flags cannot be read counts as one), ``.tflite``
on x86 with VNNI, on ARM and elsewhere. It orders the files, it does not pick one: a runtime that is not
installed is skipped (:func:`edge_sdk.bundled.bundled_file`), and ``backend=`` or a path always wins.
"""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

#: host class -> model file suffixes, fastest first
PREFERENCE: dict[str, tuple[str, ...]] = {
    "x86-vnni": (".tflite", ".onnx"),
    "x86": (".onnx", ".tflite"),
    "arm": (".tflite", ".onnx"),
    "other": (".tflite", ".onnx"),
}
#: ``/proc/cpuinfo`` flags naming an int8 dot-product (VNNI) instruction set on x86
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "avx_vnni_int8"})
_X86 = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})
_ARM = frozenset({"aarch64", "arm64", "armv7l", "armv8l", "armv8"})
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The feature flags of the first processor in ``cpuinfo`` (the text of ``/proc/cpuinfo``; read
    here when None): x86's ``flags`` line or ARM's ``Features`` line. Empty where there is no such
    file or line. Raises nothing."""
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


def host_class(machine: str | None = None, flags: frozenset[str] | None = None) -> str:
    """The key of :data:`PREFERENCE` for a CPU: ``machine`` as :func:`platform.machine` names it and its
    ``flags`` (:func:`cpu_flags`); both read from this host when None. Raises nothing."""
    arch = (platform.machine() if machine is None else machine).lower()
    if arch in _X86:
        return "x86-vnni" if (cpu_flags() if flags is None else flags) & VNNI_FLAGS else "x86"
    if arch in _ARM:
        return "arm"
    return "other"


@lru_cache(maxsize=1)
def this_host() -> str:
    """:func:`host_class` of the CPU this process runs on, worked out once."""
    return host_class()


def preferred_suffixes(host: str | None = None) -> tuple[str, ...]:
    """Model file suffixes fastest first for ``host`` (a :data:`PREFERENCE` key; this CPU's when None).
    Raises nothing: an unknown key gets the ``other`` order."""
    return PREFERENCE.get(this_host() if host is None else host, PREFERENCE["other"])
