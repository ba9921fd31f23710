"""Send the hub's newest frames to a browser as MJPEG (``multipart/x-mixed-replace``), a bounded number of viewers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable

from . import _deps  # noqa: F401
import anyio
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from .errors import ApiError
from .stream import StreamHub

BOUNDARY = "frame"
#: a viewer waiting this long for a new frame gets the last one again (keeps proxies and browsers from timing out)
RESEND_AFTER_S = 5.0


class FrameSignal:
    """Wakes the event loop's waiters when the hub publishes (the hub's thread calls :meth:`notify`)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver wake-ups to ``loop`` (the server's; called at start-up)."""
        self._loop = loop
        self._event = asyncio.Event()

    def notify(self) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        if event is not None:
            event.set()

    async def wait(self, timeout: float) -> None:
        """Return at the next published frame, or after ``timeout`` seconds."""
        event = self._event
        if event is None:
            await anyio.sleep(min(timeout, 0.05))
            return
        with anyio.move_on_after(timeout):
            await event.wait()


class MjpegStreams:
    """The stream endpoint's state: the hub, its wake-up signal and the viewer count (at most ``max_viewers``)."""

    def __init__(self, hub: StreamHub, max_viewers: int) -> None:
        self.hub = hub
        self.signal = FrameSignal()
        hub.add_listener(self.signal.notify)
        self.max_viewers = max_viewers
        self._viewers = 0
        self._lock = threading.Lock()

    @property
    def viewers(self) -> int:
        return self._viewers

    def response(self) -> StreamingResponse:
        """A streaming response for one more viewer; :class:`ApiError` 503 ``too_many_viewers`` past the limit."""
        with self._lock:
            if self._viewers >= self.max_viewers:
                raise ApiError(503, "too_many_viewers",
                               f"{self.max_viewers} viewers are watching the stream already (--max-streams)",
                               {"Retry-After": "5"})
            self._viewers += 1
        released = threading.Event()

        def release() -> None:
            if not released.is_set():
                released.set()
                with self._lock:
                    self._viewers -= 1

        return StreamingResponse(self._parts(release), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                                 background=BackgroundTask(release))

    async def _parts(self, release: Callable[[], None]) -> AsyncIterator[bytes]:
        seen = -1
        try:
            while True:
                frame = self.hub.latest()
                if frame is None or frame.seq == seen:
                    await self.signal.wait(RESEND_AFTER_S)  # a new frame, or the last one again after a while
                    frame = self.hub.latest()
                    if frame is None:
                        continue
                seen = frame.seq
                yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}\r\n\r\n"
                       .encode("ascii") + frame.jpeg + b"\r\n")
        finally:
            release()
