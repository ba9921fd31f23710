"""Read the picture of a classify request: raw image bytes or a multipart form, bounded in size and time."""

from __future__ import annotations

from collections.abc import AsyncIterator

from . import _deps  # noqa: F401
import anyio
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from .errors import ApiError

RAW_TYPES = ("application/octet-stream",)  # and every image/* type
MULTIPART = "multipart/form-data"
#: the form field that carries the picture (any file field is taken when it is absent)
FIELD = "image"


def media_type(headers: Headers) -> str:
    """The request's media type, lower case, without parameters ("" when absent)."""
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_image_upload(request: Request, max_bytes: int, timeout_s: float) -> bytes:
    """The uploaded picture's bytes.

    Raises :class:`ApiError`: 415 ``unsupported_media_type`` for another content type, 413 ``too_large``
    past ``max_bytes`` (from Content-Length before reading, else while reading), 408 ``request_timeout``
    when the upload takes longer than ``timeout_s``, 400 ``bad_form`` for a form without a file.
    """
    kind = media_type(request.headers)
    if kind != MULTIPART and not kind.startswith("image/") and kind not in RAW_TYPES:
        raise ApiError(415, "unsupported_media_type",
                       f"send the picture as the body with Content-Type image/* or application/octet-stream, "
                       f"or as a multipart/form-data file field named '{FIELD}'; got "
                       f"{kind or 'no Content-Type'!r} (curl: --data-binary @cat.jpg -H 'Content-Type: image/jpeg', "
                       f"or -F {FIELD}=@cat.jpg)")
    _check_declared_length(request.headers, max_bytes)
    try:
        with anyio.fail_after(timeout_s):
            body = await _read_bounded(request, max_bytes)
            return await _form_file(request.headers, body, max_bytes) if kind == MULTIPART else body
    except TimeoutError:
        raise ApiError(408, "request_timeout", f"the upload took longer than {timeout_s:g} s") from None


def _check_declared_length(headers: Headers, max_bytes: int) -> None:
    declared = headers.get("content-length")
    if declared is not None and declared.strip().isascii() and declared.strip().isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "too_large", _too_large(max_bytes))


async def _read_bounded(request: Request, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise ApiError(413, "too_large", _too_large(max_bytes))
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "incomplete_upload", "the client went away before the upload was complete") from None
    return b"".join(chunks)


async def _form_file(headers: Headers, body: bytes, max_bytes: int) -> bytes:
    async def replay() -> AsyncIterator[bytes]:
        yield body

    try:
        form = await MultiPartParser(headers, replay(), max_files=1, max_fields=16, max_part_size=max_bytes).parse()
    except MultiPartException as exc:
        raise ApiError(400, "bad_form", f"cannot read the multipart form: {exc.message}") from None
    try:
        files = [value for _key, value in form.multi_items() if isinstance(value, UploadFile)]
        chosen = form.get(FIELD) if isinstance(form.get(FIELD), UploadFile) else (files[0] if files else None)
        if chosen is None:
            raise ApiError(400, "bad_form", f"the form holds no file: send the picture in a file field named '{FIELD}'")
        return await chosen.read()
    finally:
        await form.close()


def _too_large(max_bytes: int) -> str:
    return f"the upload is larger than the server's limit of {max_bytes:,} bytes (--max-upload)"
