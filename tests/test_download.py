"""Tests for train.data.download against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import collections
import hashlib
import http.server
import io
import tarfile
import threading
import time
from pathlib import Path

import pytest

from cifar_edge.train.errors import DownloadError
from cifar_edge.train.data import download
from cifar_edge.train.data.download import ARCHIVE_NAME, download_cifar10, download_file, md5sum


def _make_archive() -> bytes:
    """A small .tar.gz with a couple of members, large enough to span several chunks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        members = {
            "data/readme.txt": b"cifar-edge test archive\n",
            # Pseudo-random bytes so gzip cannot shrink them away.
            "data/blob.bin": b"".join(
                hashlib.sha256(str(i).encode()).digest() for i in range(6000)
            ),
        }
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


ARCHIVE = _make_archive()
ARCHIVE_MD5 = hashlib.md5(ARCHIVE).hexdigest()
WRONG_MD5 = "0" * 32
_real_sleep = time.sleep  # the no_sleep fixture patches time.sleep globally


class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes: /good.tar.gz, /drop.tar.gz, /slow.tar.gz, /error503, anything else 404."""

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        server = self.server
        with server.lock:  # type: ignore[attr-defined]
            server.counts[self.path] += 1  # type: ignore[attr-defined]
        if self.path == "/good.tar.gz":
            self._headers(len(ARCHIVE))
            self.wfile.write(ARCHIVE)
        elif self.path == "/drop.tar.gz":
            # Promise the whole archive, send half of it, then hang up.
            self._headers(len(ARCHIVE))
            self.wfile.write(ARCHIVE[: len(ARCHIVE) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif self.path == "/slow.tar.gz":
            self._headers(len(ARCHIVE))
            self.wfile.flush()
            _real_sleep(0.5)  # longer than the client's timeout
            try:
                self.wfile.write(ARCHIVE)
            except OSError:
                pass
        elif self.path == "/error503":
            self.send_error(503, "Service Unavailable")
        else:
            self.send_error(404, "Not Found")

    def _headers(self, length: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep test output quiet."""


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()

    def handle_error(self, request, client_address) -> None:  # type: ignore[override]
        """Clients hanging up on purpose are expected here."""

    def url(self, path: str) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{path}"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    """A threaded HTTP server on 127.0.0.1 with a free port, shut down after the test."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the back-off sleeps instead of sleeping."""
    sleeps: list[float] = []
    monkeypatch.setattr(download.time, "sleep", sleeps.append)
    return sleeps


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_good_download_writes_verified_file_and_shows_progress(server, tmp_path, capfd):
    dest = tmp_path / "sub" / "archive.tar.gz"
    result = download_file(server.url("/good.tar.gz"), dest, ARCHIVE_MD5, backoff=0)
    assert result == dest
    assert dest.read_bytes() == ARCHIVE
    assert md5sum(dest) == ARCHIVE_MD5
    assert _leftovers(dest.parent) == ["archive.tar.gz"]
    assert server.counts["/good.tar.gz"] == 1
    err = capfd.readouterr().err
    assert "100%" in err
    assert "archive.tar.gz" in err  # the bar is labelled with the file name


def test_progress_false_prints_nothing(server, tmp_path, capfd):
    dest = tmp_path / "archive.tar.gz"
    download_file(server.url("/good.tar.gz"), dest, ARCHIVE_MD5, progress=False, backoff=0)
    assert dest.read_bytes() == ARCHIVE
    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out == ""


def test_md5sum_matches_hashlib(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(ARCHIVE)
    assert md5sum(path, chunk_size=1000) == ARCHIVE_MD5


def test_wrong_md5_raises_and_leaves_nothing(server, tmp_path, no_sleep):
    dest = tmp_path / "archive.tar.gz"
    with pytest.raises(DownloadError) as info:
        download_file(server.url("/good.tar.gz"), dest, WRONG_MD5, progress=False, backoff=0)
    message = str(info.value)
    assert WRONG_MD5 in message
    assert ARCHIVE_MD5 in message
    assert server.url("/good.tar.gz") in message
    assert _leftovers(tmp_path) == []
    assert server.counts["/good.tar.gz"] == 1  # a checksum mismatch is not retried
    assert no_sleep == []


def test_dropped_connection_is_retried_then_fails(server, tmp_path, no_sleep):
    dest = tmp_path / "archive.tar.gz"
    url = server.url("/drop.tar.gz")
    with pytest.raises(DownloadError) as info:
        download_file(url, dest, ARCHIVE_MD5, retries=2, progress=False, backoff=0)
    message = str(info.value)
    assert server.counts["/drop.tar.gz"] == 3  # retries + 1
    assert url in message
    assert "3 attempt" in message
    assert f"connection dropped after {len(ARCHIVE) // 2:,} of {len(ARCHIVE):,} bytes" in message
    assert _leftovers(tmp_path) == []
    assert no_sleep == [0, 0]


def test_backoff_doubles_between_attempts(server, tmp_path, no_sleep):
    with pytest.raises(DownloadError):
        download_file(
            server.url("/drop.tar.gz"), tmp_path / "a.tar.gz", retries=3, progress=False, backoff=0.5
        )
    assert server.counts["/drop.tar.gz"] == 4
    assert no_sleep == [0.5, 1.0, 2.0]


def test_http_5xx_is_retried(server, tmp_path, no_sleep):
    with pytest.raises(DownloadError) as info:
        download_file(server.url("/error503"), tmp_path / "a.tar.gz", retries=1, progress=False, backoff=0)
    assert server.counts["/error503"] == 2
    assert "503" in str(info.value)
    assert _leftovers(tmp_path) == []


def test_timeout_is_retried(server, tmp_path, no_sleep):
    with pytest.raises(DownloadError) as info:
        download_file(
            server.url("/slow.tar.gz"), tmp_path / "a.tar.gz", retries=1, timeout=0.1, progress=False, backoff=0
        )
    assert server.counts["/slow.tar.gz"] == 2
    assert "timed out" in str(info.value)
    assert _leftovers(tmp_path) == []


def test_404_is_not_retried(server, tmp_path, no_sleep):
    url = server.url("/missing")
    with pytest.raises(DownloadError) as info:
        download_file(url, tmp_path / "a.tar.gz", retries=3, progress=False, backoff=0)
    assert server.counts["/missing"] == 1
    message = str(info.value)
    assert "404" in message
    assert url in message
    assert "1 attempt" in message
    assert _leftovers(tmp_path) == []
    assert no_sleep == []


def test_connection_refused_is_retried(tmp_path, no_sleep, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    # Bind then close a server to get a port nobody listens on.
    srv = _Server()
    port = srv.server_address[1]
    srv.server_close()
    with pytest.raises(DownloadError) as info:
        download_file(f"http://127.0.0.1:{port}/x", tmp_path / "a", retries=2, progress=False, backoff=0)
    assert "3 attempt" in str(info.value)
    assert len(no_sleep) == 2
    assert _leftovers(tmp_path) == []


def test_existing_dest_survives_failed_download(server, tmp_path, no_sleep):
    dest = tmp_path / "archive.tar.gz"
    dest.write_bytes(b"previous content")
    with pytest.raises(DownloadError):
        download_file(server.url("/drop.tar.gz"), dest, retries=1, progress=False, backoff=0)
    with pytest.raises(DownloadError):
        download_file(server.url("/good.tar.gz"), dest, WRONG_MD5, progress=False, backoff=0)
    assert dest.read_bytes() == b"previous content"
    assert _leftovers(tmp_path) == ["archive.tar.gz"]


def test_download_cifar10_uses_verified_cache_without_requests(server, tmp_path):
    cached = tmp_path / ARCHIVE_NAME
    cached.write_bytes(ARCHIVE)
    result = download_cifar10(tmp_path, url=server.url("/good.tar.gz"), md5=ARCHIVE_MD5, progress=False)
    assert result == cached
    assert sum(server.counts.values()) == 0
    assert cached.read_bytes() == ARCHIVE


def test_download_cifar10_downloads_when_absent_or_corrupt(server, tmp_path):
    result = download_cifar10(tmp_path, url=server.url("/good.tar.gz"), md5=ARCHIVE_MD5, progress=False)
    assert result == tmp_path / ARCHIVE_NAME
    assert result.read_bytes() == ARCHIVE
    assert server.counts["/good.tar.gz"] == 1
    result.write_bytes(b"corrupt")
    download_cifar10(tmp_path, url=server.url("/good.tar.gz"), md5=ARCHIVE_MD5, progress=False)
    assert result.read_bytes() == ARCHIVE
    assert server.counts["/good.tar.gz"] == 2


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://127.0.0.1/x.tar.gz", "/tmp/x.tar.gz", "data:,hello", "http://"],
)
def test_non_http_url_refused(tmp_path, url):
    with pytest.raises(DownloadError, match="http"):
        download_file(url, tmp_path / "a", progress=False)
    assert _leftovers(tmp_path) == []
