"""Every error the server sends: ``{"error": {"code": ..., "message": ...}}`` with a fitting status, never a trace."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from edge_sdk.errors import EdgeSDKError

from . import _deps  # noqa: F401  (the 'serve' extra, or one clear error)
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

log = logging.getLogger(__name__)

#: Starlette's own HTTP errors (routing, static files) by status: the code clients see
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


class ServeError(EdgeSDKError):
    """The server cannot start (the address cannot be bound)."""


class ApiError(Exception):
    """A request the server refuses: HTTP ``status``, a stable ``code`` and a message for people."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The JSON error body every refusal uses."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=dict(headers or {}))


async def on_api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def on_http_exception(_request: Request, exc: Exception) -> JSONResponse:
    """Starlette's 404/405/... as our JSON error."""
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    message = {404: "no such endpoint", 405: "method not allowed on this endpoint"}.get(exc.status_code,
                                                                                     str(exc.detail))
    return error_response(exc.status_code, code, message, exc.headers)


async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    """Anything else: logged with its trace on the server, a generic 500 for the client."""
    log.error("unexpected error while serving a request", exc_info=exc)
    return error_response(500, "internal_error", "the server failed on this request; see its log")


EXCEPTION_HANDLERS = {ApiError: on_api_error, HTTPException: on_http_exception, Exception: on_unexpected}
