"""A send's SMTP connection: reopened after its share of messages, retried when it may pass."""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

from mailer.errors import DeliveryError
from mailer.smtp import ConnectionLost, SmtpConnection, is_transient

if TYPE_CHECKING:
    from mailer.send.workers import DeliveryRun

# Waits before reopening a connection that failed in a way that may pass, in units of
# [limits] retry_delay (2 s by default: 10, 30, then 80 s, with jitter: ~2 minutes in all).
RECONNECT_WAITS = (5, 15, 40)
log = logging.getLogger(__name__)


class Link(SmtpConnection):
    """An SMTP connection that reconnects after carrying its share of messages.

    Opening it retries what may pass in a minute (a 421 greeting, a refused or reset
    connection) with growing waits. Until one connection of the run is open, the others wait:
    a server that is down, or refuses the login, is tried by one connection, not by each.
    """

    def __init__(self, run: DeliveryRun, limit: int) -> None:
        super().__init__(run.plan.settings.smtp)
        self._run = run
        self._limit = limit
        self.carried = 0

    def ready(self) -> None:
        """Open the connection, afresh when it has carried `limit` messages."""
        if self.is_open and self.carried >= self._limit:
            self.close()
        if self.is_open:
            return
        run = self._run
        if run.opened.is_set():
            self._open_retrying()
        else:
            with run.first_open:
                if run.stop.is_set():
                    raise ConnectionLost("the run is stopping")
                self._open_retrying()
                run.opened.set()
        self.carried = 0

    def _open_retrying(self) -> None:
        delay = self._run.plan.settings.limits.retry_delay
        for attempt, wait in enumerate((*RECONNECT_WAITS, None)):
            try:
                self.open()
                return
            except DeliveryError as err:
                if wait is None or not is_transient(err) or self._run.stop.is_set():
                    raise
                log.info("%s; trying again (%d)", err, attempt + 1)
                self._run.stop.wait(delay * wait * random.uniform(0.8, 1.2))

    def has_room(self) -> bool:
        """Say whether this connection will carry one more message."""
        return self.is_open and self.carried < self._limit
