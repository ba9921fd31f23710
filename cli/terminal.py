"""Untrusted text made safe for a terminal, and JSON that strict parsers accept.

Labels come from model metadata and file names from whoever named the files;
printed raw, an escape sequence (``ESC [ 2 J``, an OSC title or hyperlink) or a
newline could clear the screen or forge a result line. :func:`safe_text`
escapes every character that is not printable (controls, newlines, bidi and
zero-width format characters, unassigned code points) the way Python writes it
in a string literal, so the text stays one visible line. JSON output is never
escaped this way: ``--json`` keeps the exact strings (JSON escapes controls itself), and is strict
(:func:`~edge_sdk.spec.strict_json`: no ``NaN``).
"""

from __future__ import annotations

from typing import Any

from edge_sdk.spec import strict_json  # noqa: F401 - the tools' strict JSON, with the rest of their output helpers


def safe_text(text: str) -> str:
    """``text`` with every non-printable character written as Python does: ``\\n``, ``\\x1b``, ``\\u202e``..."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def safe_tree(value: Any) -> Any:
    """A copy of a JSON-like value with :func:`safe_text` applied to every string (keys too)."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {safe_tree(k): safe_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [safe_tree(v) for v in value]
    if isinstance(value, tuple):
        return tuple(safe_tree(v) for v in value)
    return value
