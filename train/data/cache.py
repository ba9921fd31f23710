"""Where cifar-edge keeps downloaded archives and decoded image arrays."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CACHE_ENV = "CIFAR_EDGE_CACHE"


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$CIFAR_EDGE_CACHE``, else ``$XDG_CACHE_HOME/cifar-edge``, else ``~/.cache/cifar-edge``."""
    env = os.environ if env is None else env
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV]).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "cifar-edge"
