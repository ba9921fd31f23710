"""Hide the credentials a source URL may carry (``rtsp://user:pass@host/...``, ``?password=...``) wherever
the source is shown: logs, status, errors, the web page."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
#: query parameters whose values are secrets (matched case-insensitively, as whole names or name parts)
SECRET_PARAMS = re.compile(r"pass|pwd|secret|token|key|auth|sig|user|login|credential", re.IGNORECASE)
_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with its user name, password and secret-looking query values replaced by ``***``;
    text that is not a URL is returned as it is."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an invalid IPv6 literal and the like: hide everything after the scheme
        scheme, sep, _rest = url.partition("://")
        return f"{scheme}{sep}{MASK}" if sep else url
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if SECRET_PARAMS.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """``text`` (an error message, a log line) with every URL in it redacted (:func:`redact_url`)."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)
