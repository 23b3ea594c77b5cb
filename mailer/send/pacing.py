"""Pace sending: messages per second across all connections, and per hour of accepted mail."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable

HOUR = 3600.0


class RateLimiter:
    """Space sends to per_second; keep accepted messages under per_hour in any rolling hour.

    Each wait() reserves a place in the hour; a message the server did not accept gives its
    place back with release(), so only accepted messages count.
    """

    def __init__(
        self,
        per_second: float,
        per_hour: int | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = 1.0 / per_second
        self._per_hour = per_hour
        self._clock = clock
        self._lock = threading.Lock()
        self._next = 0.0
        self._hour: deque[float] = deque()

    def wait(self, stop: threading.Event) -> float:
        """Block until the next send may start (or stop is set); return its reservation."""
        start = self._reserve(block=True)
        assert start is not None
        delay = start - self._clock()
        if delay > 0:
            stop.wait(delay)
        return start

    def try_wait(self) -> float | None:
        """Return a reservation if a send may start now, else None (nothing reserved)."""
        return self._reserve(block=False)

    def _reserve(self, *, block: bool) -> float | None:
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            if self._per_hour is not None:
                while self._hour and self._hour[0] <= now - HOUR:
                    self._hour.popleft()
                if len(self._hour) >= self._per_hour:
                    start = max(start, self._hour[-self._per_hour] + HOUR)
            if not block and start > now:
                return None
            if self._per_hour is not None:
                self._hour.append(start)
            self._next = start + self._interval
            return start

    def release(self, reservation: float) -> None:
        """Give back a reservation whose message the server did not accept."""
        if self._per_hour is None:
            return
        with self._lock, contextlib.suppress(ValueError):  # ValueError: already out of the hour
            self._hour.remove(reservation)
