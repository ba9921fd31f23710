"""Assemble the Starlette app: routes, auth, security headers and JSON errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from . import _deps  # noqa: F401
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from edge_sdk.classifier import Classifier

from . import api
from .auth import BearerAuth
from .errors import EXCEPTION_HANDLERS
from .headers import SecurityHeaders
from .hosts import HostCheck
from .mjpeg import MjpegStreams
from .page import build_page
from .settings import ServeSettings
from .stream import StreamHub
from .work import WorkLimiter


def create_app(classifier: Classifier, settings: ServeSettings, hub: StreamHub | None = None) -> Starlette:
    """The web app over ``classifier`` and, when given, a started ``hub`` (the caller keeps owning both).

    ``settings.token`` turns on bearer auth for every endpoint but ``/healthz``; every request must name a
    trusted host, and a state-changing one must not come from another site (:class:`HostCheck`). Raises
    ``ValueError`` for settings that :meth:`ServeSettings.validate` refuses.
    """
    settings.validate()
    streams = MjpegStreams(hub, settings.max_streams) if hub is not None else None
    page = build_page()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if streams is not None:
            streams.signal.bind(asyncio.get_running_loop())
        yield

    routes = [
        Route("/", api.page, methods=["GET"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/v1/model", api.model_info, methods=["GET"]),
        Route("/v1/classify", api.classify, methods=["POST"]),
        Route("/v1/stream", api.stream_status, methods=["GET"]),
        Route("/stream.mjpg", api.stream_mjpeg, methods=["GET"]),
        Route("/snapshot.jpg", api.snapshot, methods=["GET"]),
    ]
    middleware = [Middleware(SecurityHeaders), Middleware(HostCheck, settings=settings)]
    if settings.token is not None:
        middleware.append(Middleware(BearerAuth, token=settings.token))
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
    app.state.serve = api.ServeContext(classifier, settings, streams, page, WorkLimiter(settings.max_inflight))
    return app
