"""The web page: one HTML file with its style and script inlined, and the Content-Security-Policy that admits
exactly those two (by hash), so the page needs no other request and runs no other script."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from importlib import resources

STYLE_MARK, SCRIPT_MARK = "/*STYLE*/", "//SCRIPT"


@dataclass(frozen=True)
class Page:
    html: bytes
    csp: str


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def build_page() -> Page:
    """The page from ``static/`` (index.html with style.css and app.js inlined) and its CSP header value."""
    static = resources.files(__package__) / "static"
    template = (static / "index.html").read_text(encoding="utf-8")
    style = (static / "style.css").read_text(encoding="utf-8")
    script = (static / "app.js").read_text(encoding="utf-8")
    html = template.replace(STYLE_MARK, style).replace(SCRIPT_MARK, script)
    csp = (f"default-src 'none'; script-src {_sha256(script)}; style-src {_sha256(style)}; "
           "img-src 'self' blob:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    return Page(html.encode("utf-8"), csp)
