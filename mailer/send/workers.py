"""The worker threads of a send: one SMTP connection and one ledger handle each."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from mailer.config import Smtp
from mailer.errors import DeliveryError
from mailer.ledger import Ledger
from mailer.mime import MessageError, MessageFactory
from mailer.recipients import Recipient
from mailer.send.pacing import RateLimiter
from mailer.send.plan import SendPlan
from mailer.smtp import ConnectionLost, Outcome, SmtpConnection

MAX_RECONNECTS = 3  # per message: a connection that keeps dropping is a server problem
Clock = Callable[[], datetime]
Progress = Callable[[str, Outcome], None]


@dataclass
class DeliveryRun:
    """The worker threads of one send: one SMTP connection and one ledger handle each."""

    plan: SendPlan
    factory: MessageFactory
    progress: Progress | None
    now: Clock
    stop: threading.Event = field(default_factory=threading.Event)
    error: DeliveryError | None = None
    crash: Exception | None = None
    interrupted: bool = False
    sent: int = 0
    _failures_in_a_row: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        limits = self.plan.settings.limits
        self.jobs: queue.Queue[Recipient | None] = queue.Queue(maxsize=2 * limits.connections)
        self.limiter = RateLimiter(limits.per_second, limits.per_hour)

    def start(self) -> None:
        for number in range(self.plan.settings.limits.connections):
            thread = threading.Thread(target=self._work, name=f"smtp-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def put(self, recipient: Recipient) -> None:
        """Queue a recipient, waiting while the workers are busy (bounded memory)."""
        while not self.stop.is_set():
            try:
                self.jobs.put(recipient, timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Tell every worker to finish its current message and wait for them.

        A second Ctrl+C while waiting only makes the workers stop sooner: the ledger must
        hear how each message in flight ended before the process goes.
        """
        while True:
            try:
                self._finish()
                return
            except KeyboardInterrupt:
                self.interrupted = True
                self.stop.set()

    def _finish(self) -> None:
        for _thread in self._threads:
            while True:
                try:
                    self.jobs.put(None, timeout=0.2)
                    break
                except queue.Full:
                    self._discard_one()
        for thread in self._threads:
            thread.join()

    def _discard_one(self) -> None:
        if self.stop.is_set():
            with contextlib.suppress(queue.Empty):
                self.jobs.get_nowait()

    def _work(self) -> None:
        ledger: Ledger | None = None
        connection = _Link(
            self.plan.settings.smtp, self.plan.settings.limits.messages_per_connection
        )
        try:
            ledger = Ledger.open(self.plan.folder)
            while (recipient := self.jobs.get()) is not None:
                if not self.stop.is_set():
                    self._deliver(recipient, ledger, connection)
        except DeliveryError as err:
            self._halt(err)
            self._drain()
        except Exception as err:  # a bug, or a ledger that cannot open: the main thread raises it
            self.crash = err
            self.stop.set()
            self._drain()
        finally:
            connection.close()
            if ledger is not None:
                ledger.close()

    def _drain(self) -> None:
        """Take jobs until told to finish: what is left stays pending for the next run."""
        while self.jobs.get() is not None:
            pass

    def _deliver(self, recipient: Recipient, ledger: Ledger, connection: _Link) -> None:
        """Send to one recipient, retrying 4xx and dropped connections within this run."""
        issue_id, key = self.plan.issue_id, recipient.key
        try:
            message = self.factory.build(recipient.fields, now=self.now())
        except MessageError as err:
            ledger.mark_failed(issue_id, key, 0, str(err), self.now())
            self._record(recipient, Outcome("failed", None, str(err)))
            return
        limits = self.plan.settings.limits
        retries = reconnects = 0
        while not self.stop.is_set():
            connection.ready()
            reservation = self.limiter.wait(self.stop)
            if self.stop.is_set():  # stopped while waiting for its turn: do not send
                self.limiter.release(reservation)
                return
            try:
                outcome = connection.send(
                    self.factory.envelope_sender,
                    message.recipient,  # the IDNA form of the address
                    message.data,
                    on_accepted=lambda: ledger.mark_sending(issue_id, key, self.now()),
                )
            except ConnectionLost:
                self.limiter.release(reservation)
                connection.close()
                reconnects += 1
                if reconnects > MAX_RECONNECTS:
                    raise DeliveryError(
                        f"{self.plan.server}: the connection dropped {reconnects} times in a "
                        "row; what is left is pending: run the same command again later"
                    ) from None
                continue
            if outcome.kind != "sent":
                self.limiter.release(reservation)
            if outcome.kind == "deferred" and retries < limits.retries:
                ledger.mark_deferred(issue_id, key, outcome.code or 0, outcome.text, self.now())
                self.stop.wait(limits.retry_delay * 2**retries)
                retries += 1
                continue
            self._settle(recipient, ledger, outcome)
            if outcome.kind == "unknown":
                connection.close()  # the connection broke mid-message; start afresh
            return

    def _settle(self, recipient: Recipient, ledger: Ledger, outcome: Outcome) -> None:
        issue_id, key, now = self.plan.issue_id, recipient.key, self.now()
        code = outcome.code or 0
        if outcome.kind == "sent":
            ledger.mark_sent(issue_id, key, code, outcome.text, now)
        elif outcome.kind == "deferred":
            ledger.mark_deferred(issue_id, key, code, outcome.text, now)
        elif outcome.kind == "failed":
            ledger.mark_failed(issue_id, key, code, outcome.text, now)
        else:
            ledger.mark_unknown(issue_id, key, outcome.text, now)
        self._record(recipient, outcome)

    def _record(self, recipient: Recipient, outcome: Outcome) -> None:
        limit = self.plan.settings.limits.max_consecutive_failures
        with self._lock:
            if outcome.kind == "sent":
                self.sent += 1
                self._failures_in_a_row = 0
            else:
                self._failures_in_a_row += 1
            if self.progress is not None:
                self.progress(recipient.email, outcome)
            if self._failures_in_a_row >= limit and self.error is None:
                self._halt(
                    DeliveryError(
                        f"{self.plan.server}: stopped after {limit} failures in a row (last: "
                        f"{outcome.code or ''} {outcome.text}); what is left is pending: see "
                        "`mailer status`, fix the cause, then run the same command again"
                    ),
                    locked=True,
                )

    def _halt(self, err: DeliveryError, *, locked: bool = False) -> None:
        if locked:
            self.error = self.error or err
        else:
            with self._lock:
                self.error = self.error or err
        self.stop.set()


class _Link(SmtpConnection):
    """An SMTP connection that reconnects after carrying its share of messages."""

    def __init__(self, settings: Smtp, limit: int) -> None:
        super().__init__(settings)
        self._limit = limit
        self._carried = 0

    def ready(self) -> None:
        """Open the connection, afresh when it has carried `limit` messages."""
        if self.is_open and self._carried >= self._limit:
            self.close()
        if not self.is_open:
            self.open()
            self._carried = 0

    def send(
        self, sender: str, recipient: str, data: bytes, *, on_accepted: Callable[[], None]
    ) -> Outcome:
        """Send one message, counting the transactions on this connection."""
        self._carried += 1
        return super().send(sender, recipient, data, on_accepted=on_accepted)
