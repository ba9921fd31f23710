"""Progress bars for the long steps of the command line: tqdm's, on stderr.

A bar is drawn only when it is asked for (commands ask when stderr is a terminal and ``--json``
is off: :func:`wanted`) and tqdm is installed (it comes with the ``train`` extra; an SDK-only
install simply shows none). Otherwise a no-op bar stands in, so callers never branch.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import IO, Any


class NullBar:
    """A bar that draws nothing (progress off, or tqdm not installed)."""

    def update(self, n: int = 1) -> None:
        """Ignore progress."""

    def close(self) -> None:
        """Nothing to close."""

    def __enter__(self) -> NullBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wanted(as_json: bool = False) -> bool:
    """Whether a command should draw bars: stderr is a terminal and the output is not ``--json``."""
    return not as_json and sys.stderr.isatty()


def progress_bar(total: int | None, desc: str, enabled: bool, *, unit: str = "it", bytes_: bool = False,
                 leave: bool = False, file: IO[str] | None = None) -> Any:
    """A tqdm bar on ``file`` (default stderr; ``total`` steps, or bytes when ``bytes_``) when ``enabled``
    and tqdm is installed, else a :class:`NullBar`; ``leave`` keeps the finished bar on screen. Use it
    as a context manager, or call ``close()``."""
    if not enabled or importlib.util.find_spec("tqdm") is None:
        return NullBar()
    import tqdm

    options = dict(unit="B", unit_scale=True, unit_divisor=1024) if bytes_ else dict(unit=unit)
    return tqdm.tqdm(total=total, desc=desc, file=file or sys.stderr, leave=leave, dynamic_ncols=True, **options)
