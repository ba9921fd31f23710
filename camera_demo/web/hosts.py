"""Answer only requests addressed to this server, and refuse state-changing requests from other sites
(an ASGI middleware).

*Host*: a web page can rebind its own host name to 127.0.0.1 (DNS rebinding) and then read a loopback server
as if it were its own site; the browser still sends that page's host name in ``Host``. So a request is
answered only when its ``Host`` is one of :meth:`ServeSettings.trusted_hosts` (the bound address,
localhost, 127.0.0.1, ::1 and ``--allowed-host`` names, with ``*.domain`` and ``*`` patterns as Starlette's
``TrustedHostMiddleware`` takes them), or, for a server bound to every interface (0.0.0.0, ::), any IP
address literal (a rebinding page always uses a name) or this machine's own host name. Else 400
``untrusted_host``.

*Origin*: a POST (or any method but GET, HEAD and OPTIONS) that a browser sends from another site carries
that site's ``Origin`` (or ``Sec-Fetch-Site: cross-site``): refused with 403 ``cross_origin``. Programs that
send no Origin (curl, the SDK's clients) are not affected.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from . import _deps  # noqa: F401
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_response
from .settings import ServeSettings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def host_name(value: str) -> str | None:
    """The host of a ``Host`` header value (``name``, ``name:port``, ``[v6]:port``), lower case without a trailing
    dot; ``None`` when it is not a valid host[:port]."""
    try:
        parts = urlsplit(f"//{value}")
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None or parts.path or parts.query or parts.fragment:
        return None
    return (parts.hostname or "").rstrip(".") or None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostCheck:
    """Refuse requests whose ``Host`` is not trusted (400) and cross-site state-changing requests (403)."""

    def __init__(self, app: ASGIApp, settings: ServeSettings) -> None:
        self.app = app
        patterns = settings.trusted_hosts()
        self.allow_any = "*" in patterns
        self.names = frozenset(p for p in patterns if not p.startswith("*."))
        self.suffixes = tuple(p[1:] for p in patterns if p.startswith("*."))  # ".example.com"
        self.any_ip = settings.binds_every_interface
        if self.any_ip:
            own = socket.gethostname().lower().rstrip(".")
            self.names |= {own, f"{own}.local"} if own else set()

    def trusted(self, name: str | None) -> bool:
        """Whether requests for host ``name`` are answered."""
        if name is None:
            return False
        return (self.allow_any or name in self.names or name.endswith(self.suffixes) and bool(self.suffixes)
                or (self.any_ip and _is_ip(name)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {}
        for key, value in scope.get("headers", ()):
            headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        host = headers.get("host")
        if host is None or not self.trusted(host_name(host)):
            response = error_response(400, "untrusted_host",
                                      "this server does not answer for the host name in the request; open it by "
                                      "its address (or localhost), or start it with --allowed-host NAME")
            await response(scope, receive, send)
            return
        if scope.get("method", "GET") not in SAFE_METHODS and self._cross_site(headers, host):
            response = error_response(403, "cross_origin", "a request from another site's page is refused: "
                                      "post from this server's own page, or from a program that sends no Origin")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _cross_site(headers: dict[str, str], host: str) -> bool:
        if headers.get("sec-fetch-site", "").strip().lower() == "cross-site":
            return True
        origin = headers.get("origin")
        if origin is None:
            return False  # not a browser's cross-origin request (every browser sends Origin on those)
        try:
            netloc = urlsplit(origin.strip()).netloc.lower()
        except ValueError:
            return True
        return not netloc or netloc != host.strip().lower()  # "null" (a sandboxed page, a file) has no netloc
