"""Argparse ``type=`` functions that range-check numeric options, shared by every subcommand.

A value out of range (``--top-k 0``, ``--lr nan``, ``--runs -1``) is refused by
argparse itself, so the command prints one line and exits 2 before any work:

>>> parser.add_argument("--top-k", type=int_range(1), default=3)
>>> parser.add_argument("--score-threshold", type=float_range(0.0, 1.0), default=0.0)

Floats are always finite: ``nan``, ``inf`` and ``-inf`` are refused.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def int_range(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in ``[lo, hi]`` (either bound may be None)."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        _check(value, lo, hi, text)
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


def float_range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                hi_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite float in ``[lo, hi]``; ``lo_open``/``hi_open`` exclude a bound."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        _check(value, lo, hi, text, lo_open, hi_open)
        return value

    parse.__name__ = "number"
    return parse


def int_list(lo: int | None = None, hi: int | None = None) -> Callable[[str], list[int]]:
    """An argparse type: comma-separated integers, each in ``[lo, hi]`` (at least one)."""
    one = int_range(lo, hi)

    def parse(text: str) -> list[int]:
        values = [one(part) for part in text.split(",") if part.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
        return values

    parse.__name__ = "integer list"
    return parse


def dimensions(lo: int = 16, hi: int = 8192) -> Callable[[str], tuple[int, int]]:
    """An argparse type: ``WxH`` with both sides in ``[lo, hi]``, as ``(width, height)``."""
    side = int_range(lo, hi)

    def parse(text: str) -> tuple[int, int]:
        parts = text.lower().split("x")
        if len(parts) != 2:
            raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x480, got {text!r}")
        return side(parts[0]), side(parts[1])

    parse.__name__ = "size"
    return parse


#: common cases
positive_int = int_range(1)
non_negative_int = int_range(0)
probability = float_range(0.0, 1.0)


def _check(value: float, lo: float | None, hi: float | None, text: str, lo_open: bool = False,
           hi_open: bool = False) -> None:
    too_low = lo is not None and (value <= lo if lo_open else value < lo)
    too_high = hi is not None and (value >= hi if hi_open else value > hi)
    if not (too_low or too_high):
        return
    if hi is None:
        rule = f"must be {'>' if lo_open else '>='} {_fmt(lo)}"
    elif lo is None:
        rule = f"must be {'<' if hi_open else '<='} {_fmt(hi)}"
    else:
        rule = f"must lie in {'(' if lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if hi_open else ']'}"
    raise argparse.ArgumentTypeError(f"{rule}, got {text.strip()}")


def _fmt(bound: float) -> str:
    return str(bound) if isinstance(bound, int) else f"{bound:g}"
