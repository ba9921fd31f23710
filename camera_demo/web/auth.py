"""Bearer-token check for every endpoint but ``/healthz`` (an ASGI middleware)."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from . import _deps  # noqa: F401
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_response

#: answered without a token (load balancers and watchdogs probe it)
OPEN_PATHS = frozenset({"/healthz"})
#: RFC 6750's query parameter, for what a browser cannot send a header with (the page, the <img> stream)
QUERY_PARAM = "access_token"


class BearerAuth:
    """Refuse with 401 (JSON, ``WWW-Authenticate: Bearer``) unless the request carries ``token``.

    Accepted: ``Authorization: Bearer TOKEN``, or ``?access_token=TOKEN`` for browsers. Compared in
    constant time.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        response = error_response(401, "unauthorized", "missing or wrong bearer token: send 'Authorization: Bearer "
                                  "TOKEN' (or ?access_token=TOKEN from a browser)",
                                  {"WWW-Authenticate": 'Bearer realm="cifar-edge"'})
        await response(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self._token):
                    return True
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return any(hmac.compare_digest(given.encode("latin-1", "replace"), self._token)
                   for given in query.get(QUERY_PARAM, ()))
