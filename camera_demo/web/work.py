"""A bound on the decode and inference work in flight, which a timed-out request gives back only when its work
has really ended.

A request that hits ``--request-timeout`` is answered at once, but the thread decoding its picture cannot be
stopped: it keeps its slot until it finishes. So a series of slow uploads cannot pile up work (threads and
memory) behind the answers: past ``max_inflight`` slots, a request waits within its own timeout, then is
answered 503 ``busy``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

from . import _deps  # noqa: F401
import anyio

from .errors import ApiError

T = TypeVar("T")


class WorkLimiter:
    """At most ``slots`` calls of :meth:`run` working at once, each slot held until its call returns."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.slots = slots
        self._lock = threading.Lock()
        self._busy = 0
        self._freed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def in_flight(self) -> int:
        """Calls working now, timed-out ones included."""
        return self._busy

    async def run(self, fn: Callable[[], T], timeout_s: float) -> T:
        """``fn()`` in a worker thread once a slot is free, all within ``timeout_s``.

        Raises :class:`ApiError` 503 ``busy`` when no slot frees in time, and ``TimeoutError`` when ``fn`` takes
        longer than what is left; then its slot stays taken until ``fn`` returns.
        """
        deadline = anyio.current_time() + timeout_s
        try:
            with anyio.fail_after(timeout_s):
                await self._acquire()
        except TimeoutError:
            raise ApiError(503, "busy", f"the server is busy: {self.slots} classifications are in flight "
                           "(--max-inflight); try again", {"Retry-After": "1"}) from None
        state = {"started": False, "dropped": False}
        guard = threading.Lock()

        def work() -> T:
            with guard:
                if state["dropped"]:  # its request gave up before the thread began: nothing to do
                    raise TimeoutError
                state["started"] = True
            try:
                return fn()
            finally:
                self._release()

        try:
            with anyio.fail_after(max(deadline - anyio.current_time(), 0.0)):
                return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except BaseException:
            with guard:
                never_started = not state["started"]
                state["dropped"] = True
            if never_started:
                self._release()
            raise

    async def _acquire(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._busy < self.slots:
                    self._busy += 1
                    self._loop = loop
                    return
                if self._freed is None:
                    self._freed = asyncio.Event()
                freed = self._freed
            await freed.wait()

    def _release(self) -> None:
        """Called in the worker thread when its work has ended: frees the slot and wakes the waiters."""
        with self._lock:
            self._busy -= 1
            freed, self._freed = self._freed, None
            loop = self._loop
        if freed is not None and loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                loop.call_soon_threadsafe(freed.set)
