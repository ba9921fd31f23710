"""The endpoints: the page, ``POST /v1/classify``, ``GET /v1/model``, ``GET /healthz`` and the stream's."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import Any

from . import _deps  # noqa: F401
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from edge_sdk import __version__
from edge_sdk.classifier import ClassificationResult, Classifier
from edge_sdk.errors import InferenceError, InvalidImageError

from .errors import ApiError
from .mjpeg import MjpegStreams
from .page import Page
from .settings import ServeSettings
from .upload import read_image_upload
from .work import WorkLimiter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeContext:
    """What the endpoints share: the classifier, the options, the stream (None without ``--source``), the page."""

    classifier: Classifier
    settings: ServeSettings
    streams: MjpegStreams | None
    page: Page
    work: WorkLimiter


def context(request: Request) -> ServeContext:
    return request.app.state.serve


async def page(request: Request) -> Response:
    """The web page: stream, top-3 and FPS, upload form."""
    page = context(request).page
    return HTMLResponse(page.html, headers={"Content-Security-Policy": page.csp})


async def healthz(request: Request) -> JSONResponse:
    """Liveness, without auth: ``{"status": "ok" or "degraded", "stream": STATE or null}``; ``degraded`` when a
    stream delivers no usable frame (``no_frames``, ``bad_frames``) or is being reopened."""
    streams = context(request).streams
    state = streams.hub.health() if streams else None
    status = "ok" if state in (None, "running", "starting") else "degraded"
    return JSONResponse({"status": status, "stream": state})


async def model_info(request: Request) -> JSONResponse:
    """The model's name, file name (never the server's path to it), runtime, labels and preprocessing spec."""
    clf = context(request).classifier
    meta = clf.metadata
    return JSONResponse({
        "name": clf.model_name, "file": clf.model_path.name, "backend": clf.backend_name,
        "version": meta.model_version if meta else None, "labels": list(clf.labels), "top_k": clf.top_k,
        "preprocessing": clf.spec.to_dict(), "sdk_version": __version__,
    })


async def classify(request: Request) -> JSONResponse:
    """Classify the uploaded picture: the verdict (``label``, null with ``unknown`` true when the picture
    shows none of the model's classes), categories (label, index, score) best first, and timing; ``?top_k=N``
    asks for N categories instead of the server's ``--top-k``.

    Refuses with :class:`ApiError`: 400 ``invalid_image`` for a picture that cannot be decoded, 503
    ``timeout`` when classifying takes longer than the request timeout, 503 ``busy`` when ``--max-inflight``
    classifications are still running past it, 400 ``bad_parameter`` for a bad ``top_k``, 500
    ``inference_failed`` when the runtime fails, and the upload's own errors (:func:`read_image_upload`).
    """
    ctx = context(request)
    start = perf_counter()
    top_k = _top_k(request, ctx.classifier)
    data = await read_image_upload(request, ctx.settings.max_upload_bytes, ctx.settings.request_timeout_s)
    result = await _classify(ctx, data, top_k)
    return JSONResponse(result_json(ctx.classifier, result, len(data), 1e3 * (perf_counter() - start)))


def _top_k(request: Request, clf: Classifier) -> int:
    """``?top_k=N`` (1 to the number of labels), else the server's ``--top-k``; 400 ``bad_parameter`` otherwise."""
    text = request.query_params.get("top_k")
    if text is None:
        return clf.top_k
    value = int(text) if text.isascii() and text.isdigit() and len(text) < 6 else 0  # "²".isdigit() too
    if not 1 <= value <= len(clf.labels):
        raise ApiError(400, "bad_parameter", f"top_k must be an integer from 1 to {len(clf.labels)}, got {text[:20]!r}")
    return value


async def _classify(ctx: ServeContext, data: bytes, top_k: int) -> ClassificationResult:
    """Classify within the request timeout, holding one of the work slots until the work has ended."""
    timeout_s = ctx.settings.request_timeout_s
    try:
        return await ctx.work.run(partial(ctx.classifier.classify, data, top_k=top_k), timeout_s)
    except TimeoutError:
        raise ApiError(503, "timeout", f"classifying took longer than {timeout_s:g} s (--request-timeout)") from None
    except InvalidImageError as exc:
        raise ApiError(400, "invalid_image", str(exc)) from None
    except InferenceError as exc:
        log.warning("inference failed: %s", exc)
        raise ApiError(500, "inference_failed", str(exc)) from None


def result_json(clf: Classifier, result: ClassificationResult, size: int, request_ms: float) -> dict[str, Any]:
    """The classify endpoint's answer."""
    t = result.timing
    return {
        "model": clf.model_name,
        "label": result.label,  # the verdict: null when the picture shows none of the model's classes
        "unknown": result.unknown,
        "categories": [{"label": c.label, "index": c.index, "score": c.score} for c in result.categories],
        "timing_ms": {"preprocess": t.preprocess_ms, "inference": t.inference_ms, "postprocess": t.postprocess_ms,
                      "total": t.total_ms, "request": request_ms},
        "bytes": size,
    }


def _streams(request: Request) -> MjpegStreams:
    streams = context(request).streams
    if streams is None:
        raise ApiError(404, "no_stream", "the server runs without a stream: start it with --source")
    return streams


async def stream_status(request: Request) -> JSONResponse:
    """The stream's state, newest top-k labels, FPS and viewer count."""
    streams = _streams(request)
    return JSONResponse({**streams.hub.status(), "viewers": streams.viewers, "max_viewers": streams.max_viewers})


async def stream_mjpeg(request: Request) -> Response:
    """The annotated stream as MJPEG (``<img src="/stream.mjpg">``)."""
    return _streams(request).response()


async def snapshot(request: Request) -> Response:
    """The newest annotated frame as one JPEG; 503 ``no_frame_yet`` before the first."""
    frame = _streams(request).hub.latest()
    if frame is None:
        raise ApiError(503, "no_frame_yet", "the stream has not produced a frame yet", {"Retry-After": "1"})
    return Response(frame.jpeg, media_type="image/jpeg")
