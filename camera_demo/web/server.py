"""Bind the listening socket and run the app under uvicorn with the server's limits."""

from __future__ import annotations

import signal
import socket
import threading
from typing import Any, Callable

from . import _deps  # noqa: F401
import uvicorn
from starlette.applications import Starlette

from .errors import ServeError
from .settings import ServeSettings

#: seconds an idle keep-alive connection stays open
KEEP_ALIVE_S = 5
#: seconds open requests (stream viewers) get to finish when the server stops
GRACEFUL_SHUTDOWN_S = 2
#: the signals that stop the server
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: the largest request head (request line and headers) accepted, bytes
MAX_HEAD_BYTES = 16 * 1024


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: any free port); :class:`ServeError` if it cannot be bound."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def bound_port(sock: socket.socket) -> int:
    """The port ``sock`` listens on."""
    return int(sock.getsockname()[1])


def make_server(app: Starlette, settings: ServeSettings) -> uvicorn.Server:
    """A uvicorn server for ``app`` with the limits of ``settings`` (no access log; errors go to logging)."""
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", proxy_headers=False, server_header=False,
        timeout_keep_alive=KEEP_ALIVE_S, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        limit_concurrency=settings.max_connections, h11_max_incomplete_event_size=MAX_HEAD_BYTES,
    )
    return uvicorn.Server(config)


def run_server(app: Starlette, sock: socket.socket, settings: ServeSettings,
               announce: Callable[[], None] = lambda: None) -> None:
    """Serve ``app`` on ``sock`` until SIGINT/SIGTERM, in a new event loop; for commands, which own their process.

    Called in the main thread, both signals only ask the server to stop from before ``announce()`` (which
    prints the address) until it stopped, then the previous handlers are back: a signal that arrives while
    the event loop is still being built is a clean stop too, not an exception raised inside asyncio.
    """
    server = make_server(app, settings)
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, server.handle_exit) for sig in STOP_SIGNALS}
    try:
        announce()
        server.run(sockets=[sock])  # uvicorn's own handlers call the same handle_exit, then re-send the signal
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
