"""Pace sending: messages per second, and quotas per minute, hour and day across runs.

The quotas count accepted messages over rolling windows, across every run and issue of the
folder: a run starts from the ledger's times of the messages it sent in the last day. A wait
of up to MAX_WAIT seconds is waited; a longer one (an hourly or daily quota spent) ends the run
cleanly, the rest waiting for a later run.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

MAX_WAIT = 60.0  # seconds: a quota that frees a place sooner is waited for within the run


@dataclass
class Window:
    """At most `limit` accepted messages in any `seconds`."""

    name: str  # per_minute, per_hour, per_day
    seconds: float
    limit: int
    times: deque[float] = field(default_factory=deque)  # wall-clock starts, oldest first

    def next_free(self, now: float) -> float:
        """Return when the window has room for one more message."""
        while self.times and self.times[0] <= now - self.seconds:
            self.times.popleft()
        if len(self.times) < self.limit:
            return now
        return self.times[-self.limit] + self.seconds


@dataclass(frozen=True)
class QuotaReached:
    """The run must stop: a quota has no room for MAX_WAIT or longer."""

    window: str
    free_at: float  # wall-clock time when it has room again


class RateLimiter:
    """Space sends to per_second, and keep accepted messages within each quota window.

    Each wait() reserves a place in every window; a message the server did not accept gives
    its places back with release(), so only accepted messages count.
    """

    def __init__(
        self,
        per_second: float,
        windows: Iterable[Window] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._interval = 1.0 / per_second
        self._windows = list(windows)
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._next = 0.0
        self.reached: QuotaReached | None = None

    def wait(self, stop: threading.Event) -> float | None:
        """Block until the next send may start; return its reservation, or None to stop."""
        start = self._reserve(block=True)
        if start is None:
            stop.set()
            return None
        delay = start - self._wall()
        if delay > 0:
            stop.wait(delay)
        return start

    def try_wait(self) -> float | None:
        """Return a reservation if a send may start now, else None (nothing reserved)."""
        return self._reserve(block=False)

    def _reserve(self, *, block: bool) -> float | None:
        with self._lock:
            if self.reached is not None:
                return None
            wall, tick = self._wall(), self._clock()
            start = wall + max(0.0, self._next - tick)
            for window in self._windows:
                free = window.next_free(wall)
                if free - wall >= MAX_WAIT:
                    if block:
                        self.reached = QuotaReached(window.name, free)
                    return None
                start = max(start, free)
            if not block and start > wall:
                return None
            for window in self._windows:
                window.times.append(start)
            self._next = tick + (start - wall) + self._interval
            return start

    def release(self, reservation: float) -> None:
        """Give back a reservation whose message the server did not accept."""
        with self._lock:
            for window in self._windows:
                with contextlib.suppress(ValueError):  # already out of the window
                    window.times.remove(reservation)


def quota_windows(
    per_minute: int | None, per_hour: int | None, per_day: int | None, sent: Iterable[float]
) -> list[Window]:
    """Return the configured windows, holding the times of messages already sent."""
    times = sorted(sent)
    windows = []
    for name, seconds, limit in (
        ("per_minute", 60.0, per_minute),
        ("per_hour", 3600.0, per_hour),
        ("per_day", 86400.0, per_day),
    ):
        if limit is not None:
            now = time.time()
            windows.append(
                Window(name, seconds, limit, deque(t for t in times if t > now - seconds))
            )
    return windows
