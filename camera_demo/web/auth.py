"""Bearer-token check for every endpoint but ``/healthz`` (an ASGI middleware)."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from . import _deps  # noqa: F401
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_response

#: answered without a token (load balancers and watchdogs probe it)
OPEN_PATHS = frozenset({"/healthz"})
#: RFC 6750's query parameter, for what a browser cannot send a header with (the page, the <img> stream)
QUERY_PARAM = "access_token"


#: what a browser shows when it opens a page without the token (no script, no style from outside)
UNAUTHORIZED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>cifar-edge serve: token needed</title></head>
<body><h1>This server needs its token</h1>
<p>Open this page with the token the server was started with (<code>--token</code> or
<code>$CIFAR_EDGE_TOKEN</code>) added to its address: <code>/?access_token=TOKEN</code>.</p>
<p>Programs send the header <code>Authorization: Bearer TOKEN</code> instead.</p></body></html>
"""
MESSAGE = ("missing or wrong bearer token: send 'Authorization: Bearer TOKEN' (or ?access_token=TOKEN from a "
           "browser)")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="cifar-edge"'}


class BearerAuth:
    """Refuse with 401 (``WWW-Authenticate: Bearer``) unless the request carries ``token``: a short HTML page
    for a browser asking for a page, JSON for everything else.

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
        response: Response
        if _wants_html(scope):
            response = HTMLResponse(UNAUTHORIZED_PAGE, status_code=401, headers=CHALLENGE)
        else:
            response = error_response(401, "unauthorized", MESSAGE, CHALLENGE)
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


def _wants_html(scope: Scope) -> bool:
    """A browser navigating to a page: a GET whose ``Accept`` names ``text/html`` (``fetch`` and curl do not)."""
    if scope.get("method") != "GET":
        return False
    accept = b",".join(value for name, value in scope.get("headers", ()) if name == b"accept")
    return b"text/html" in accept.lower()
