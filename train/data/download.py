"""Download files over HTTP(S) with retries, MD5 verification and atomic placement.

Only ``http://`` and ``https://`` URLs are accepted. A file is streamed to a
temporary ``.NAME.XXXX.part`` file next to its destination while its MD5 is
computed; only a complete transfer whose checksum matches is renamed into
place, so an interrupted or corrupt download never leaves a file behind and
never replaces a good one. Every failure raises
:class:`~cifar_edge.train.errors.DownloadError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from cifar_edge.cli.progress import progress_bar
from ..errors import DownloadError

__all__ = [
    "ARCHIVE_NAME",
    "OFFICIAL_MD5",
    "OFFICIAL_URL",
    "download_cifar10",
    "download_file",
    "md5sum",
]

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"

_ALLOWED_SCHEMES = ("http", "https")
_CHUNK_SIZE = 1 << 16


class _RetryableError(Exception):
    """A transient failure (dropped connection, timeout, HTTP 5xx) worth another attempt."""


class _FatalError(Exception):
    """A failure that another attempt would not fix (HTTP 4xx, local I/O error)."""


class _SafeRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s) URLs."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in _ALLOWED_SCHEMES:
            raise _FatalError(f"refused redirect to non-HTTP URL {newurl!r}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def md5sum(path: Path, chunk_size: int = 1 << 20) -> str:
    """Return the hex MD5 digest of the file at ``path``, read in ``chunk_size`` chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_url(url: str) -> None:
    """Raise :class:`DownloadError` unless ``url`` is an http(s) URL with a host."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in _ALLOWED_SCHEMES or not parts.netloc:
        raise DownloadError(f"only http:// and https:// URLs can be downloaded, got {url!r}")


def _make_bar(progress: bool, total: int | None, desc: str) -> Any:
    """A byte-progress bar on stderr (:func:`cifar_edge.cli.progress.progress_bar`), or a no-op one."""
    return progress_bar(total, desc, progress, bytes_=True, leave=True)


def _open(url: str, timeout: float) -> Any:
    """Open ``url``; classify failures as retryable or fatal."""
    opener = urllib.request.build_opener(_SafeRedirectHandler())
    request = urllib.request.Request(url, headers={"User-Agent": "cifar-edge-downloader"})
    try:
        return opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        reason = f"HTTP {exc.code} {exc.reason}".strip()
        if exc.code >= 500:
            raise _RetryableError(reason) from exc
        raise _FatalError(reason) from exc
    except urllib.error.URLError as exc:
        raise _RetryableError(f"connection failed: {exc.reason}") from exc
    except (TimeoutError, http.client.HTTPException, OSError) as exc:
        raise _RetryableError(_describe(exc)) from exc


def _describe(exc: BaseException) -> str:
    """A short reason for a network exception."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fetch_once(url: str, tmp: Path, timeout: float, progress: bool, desc: str) -> str:
    """Stream ``url`` into ``tmp`` (truncating it) and return the MD5 of what was received.

    Raises :class:`_RetryableError` for transient network problems, including a
    body shorter than the announced Content-Length, and :class:`_FatalError`
    for the rest.
    """
    response = _open(url, timeout)
    with contextlib.closing(response):
        length_header = response.headers.get("Content-Length")
        try:
            expected = int(length_header) if length_header is not None else None
        except ValueError:
            expected = None
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        bar = _make_bar(progress, expected, desc)
        try:
            try:
                out = open(tmp, "wb")
            except OSError as exc:
                raise _FatalError(f"cannot write {tmp}: {exc}") from exc
            with out:
                while True:
                    try:
                        chunk = response.read(_CHUNK_SIZE)
                    except http.client.IncompleteRead as exc:
                        received += len(exc.partial)
                        raise _RetryableError(_dropped(received, expected)) from exc
                    except (TimeoutError, http.client.HTTPException, OSError) as exc:
                        reason = _describe(exc)
                        raise _RetryableError(
                            f"{reason} after {received:,} of {expected:,} bytes"
                            if expected is not None
                            else f"{reason} after {received:,} bytes"
                        ) from exc
                    if not chunk:
                        break
                    try:
                        out.write(chunk)
                    except OSError as exc:
                        raise _FatalError(f"cannot write {tmp}: {exc}") from exc
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                try:
                    out.flush()
                    os.fsync(out.fileno())
                except OSError as exc:
                    raise _FatalError(f"cannot write {tmp}: {exc}") from exc
        finally:
            bar.close()
    if expected is not None and received < expected:
        raise _RetryableError(_dropped(received, expected))
    return digest.hexdigest()


def _dropped(received: int, expected: int | None) -> str:
    """Reason text for a transfer that ended early."""
    if expected is None:
        return f"connection dropped after {received:,} bytes"
    return f"connection dropped after {received:,} of {expected:,} bytes"


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    md5: str | None = None,
    *,
    retries: int = 2,
    timeout: float = 60.0,
    progress: bool = True,
    backoff: float = 1.0,
) -> Path:
    """Download ``url`` to ``dest`` atomically and return ``dest`` as a :class:`Path`.

    Transient failures (connection errors, timeouts, dropped transfers, HTTP
    5xx) are retried ``retries`` more times, sleeping ``backoff * 2**attempt``
    seconds in between; HTTP 4xx and an MD5 mismatch are not retried. On any
    failure :class:`DownloadError` is raised, no temporary file remains and an
    existing ``dest`` is left untouched.
    """
    _check_url(url)
    if retries < 0:
        raise DownloadError(f"retries must be >= 0, got {retries}")
    dest_path = Path(dest)
    expected_md5 = md5.strip().lower() if md5 is not None else None
    try:
        dest_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            dir=dest_path.parent, prefix=f".{dest_path.name}.", suffix=".part"
        )
        os.close(fd)
    except OSError as exc:
        raise DownloadError(f"cannot create a temporary file next to {dest_path}: {exc}") from exc
    tmp = Path(tmp_name)
    attempts = retries + 1
    try:
        for attempt in range(attempts):
            try:
                actual_md5 = _fetch_once(url, tmp, timeout, progress, dest_path.name)
            except _FatalError as exc:
                raise DownloadError(
                    f"download of {url} failed after {attempt + 1} attempt(s): {exc}"
                ) from exc
            except _RetryableError as exc:
                if attempt + 1 >= attempts:
                    raise DownloadError(
                        f"download of {url} failed after {attempts} attempt(s): {exc}"
                    ) from exc
                time.sleep(backoff * 2**attempt)
                continue
            if expected_md5 is not None and actual_md5 != expected_md5:
                raise DownloadError(
                    f"MD5 mismatch for {url}: expected {expected_md5}, got {actual_md5}"
                )
            try:
                os.replace(tmp, dest_path)
            except OSError as exc:
                raise DownloadError(f"cannot move the download into {dest_path}: {exc}") from exc
            return dest_path
        raise AssertionError("unreachable")  # pragma: no cover
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def download_cifar10(
    cache_dir: str | os.PathLike[str],
    *,
    url: str = OFFICIAL_URL,
    md5: str = OFFICIAL_MD5,
    **kwargs: Any,
) -> Path:
    """Return ``cache_dir / ARCHIVE_NAME``, downloading it unless a verified copy is there.

    ``kwargs`` are passed to :func:`download_file` (``retries``, ``timeout``,
    ``progress``, ``backoff``). A present archive with the wrong MD5 is
    re-downloaded and replaced only once the new copy verifies.
    """
    path = Path(cache_dir) / ARCHIVE_NAME
    if path.is_file():
        try:
            if md5sum(path) == md5.strip().lower():
                return path
        except OSError:
            pass
    return download_file(url, path, md5, **kwargs)
