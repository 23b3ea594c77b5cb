"""The worker threads of a send: one SMTP connection and one ledger handle each."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from mailer.errors import DeliveryError, LedgerError, MailerError
from mailer.ledger import Ledger
from mailer.mime import MessageFactory
from mailer.recipients import Recipient
from mailer.send.pacing import RateLimiter, quota_windows
from mailer.send.plan import SendPlan
from mailer.send.worker import Worker
from mailer.smtp import Outcome

# Recipients in a row with the same unexplained 5xx and nobody accepted between: the relay's
# policy, not theirs (three dead mailboxes side by side in a list are not that rare).
SUSPECTS = 4
Clock = Callable[[], datetime]
Progress = Callable[[str, Outcome], None]


@dataclass
class DeliveryRun:
    """The worker threads of one send, and what they did."""

    plan: SendPlan
    factory: MessageFactory
    progress: Progress | None
    now: Clock
    sent_times: list[float] = field(default_factory=list)  # accepted in the last day
    stop: threading.Event = field(default_factory=threading.Event)
    error: MailerError | None = None
    crash: Exception | None = None
    interrupted: int | None = None  # the exit code of the signal that stopped the run
    timed_out: bool = False
    sent: int = 0
    _failures_in_a_row: int = 0
    _suspected: list[tuple[str, int | None]] = field(default_factory=list)
    _policy: int | None = None  # the refusal that stopped the run as the relay's policy
    _lock: threading.Lock = field(default_factory=threading.Lock)
    first_open: threading.Lock = field(default_factory=threading.Lock)
    opened: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        limits = self.plan.settings.limits
        self.jobs: queue.Queue[Recipient | None] = queue.Queue(maxsize=2 * limits.connections)
        windows = quota_windows(limits.per_minute, limits.per_hour, limits.per_day, self.sent_times)
        self.limiter = RateLimiter(limits.per_second, windows)

    def start(self) -> None:
        """Start one worker per connection."""
        for number in range(self.plan.settings.limits.connections):
            thread = threading.Thread(target=self._work, name=f"smtp-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def put(self, recipient: Recipient) -> bool:
        """Queue a reserved recipient, waiting while the workers are busy; False if stopped."""
        while not self.stop.is_set():
            try:
                self.jobs.put(recipient, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def finish(self) -> None:
        """Tell every worker to finish its current message and wait for them.

        A second Ctrl+C while waiting only makes the workers stop sooner: the ledger must
        hear how each message in flight ended before the process goes.
        """
        while True:
            try:
                self._finish()
                return
            except KeyboardInterrupt as stop:
                self.interrupted = self.interrupted or getattr(stop, "exit_code", 130)
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
        try:
            with Ledger.open(
                self.plan.folder, durability=self.plan.settings.durability, check=False
            ) as ledger:
                worker = Worker(self, ledger)
                try:
                    worker.work()
                finally:
                    worker.close()
        except MailerError as err:
            self.halt(err)  # what is left stays reserved, then pending again
        except Exception as err:  # a bug: the main thread raises it
            self.crash = err
            self.stop.set()

    def record(self, recipient: Recipient, outcome: Outcome) -> list[str]:
        """Count an outcome; stop the run after too many failures in a row.

        Return the keys to put back when the same unexplained 5xx hit SUSPECTS recipients in
        a row: the relay refuses the sender or the message, not them.
        """
        limit = self.plan.settings.limits.max_consecutive_failures
        with self._lock:
            if outcome.kind == "sent":
                self.sent += 1
                self._failures_in_a_row = 0
            else:
                self._failures_in_a_row += 1
            suspects = self._suspects(recipient, outcome)
            if self.progress is not None:
                self.progress(recipient.email, outcome)
            if self._failures_in_a_row >= limit and self.error is None:
                self.error = DeliveryError(
                    f"{self.plan.server}: stopped after {limit} failures in a row (last: "
                    f"{outcome.code or ''} {outcome.text}); what is left is pending: see "
                    "`mailer status`, fix the cause, then run the same command again"
                )
                self.stop.set()
            return suspects

    def _suspects(self, recipient: Recipient, outcome: Outcome) -> list[str]:
        if not (outcome.kind == "failed" and outcome.generic):
            if outcome.kind == "sent":
                self._suspected.clear()  # someone got it: the refusals were about them
            return []
        if self._policy is not None:
            # The run already stopped for this refusal: what other connections still had in
            # flight met the same policy, and waits too.
            return [recipient.key] if outcome.code == self._policy else []
        if self._suspected and self._suspected[-1][1] != outcome.code:
            self._suspected.clear()
        self._suspected.append((recipient.key, outcome.code))
        if len({key for key, _code in self._suspected}) < SUSPECTS:
            return []
        keys = [key for key, _code in self._suspected]
        self._suspected.clear()
        self._policy = outcome.code
        self.stop.set()  # the worker that saw it says why, with the reply
        return keys

    def time_out(self) -> None:
        """Stop at the run's deadline: the messages in flight finish, the rest waits."""
        self.timed_out = True
        self.stop.set()

    def halt(self, err: MailerError) -> None:
        """Stop the run for a reason that concerns every recipient (the server, the ledger)."""
        if isinstance(err, LedgerError) and err.exit_code == 1:
            err = DeliveryError(str(err))  # a worker's ledger: others may have sent by now
        with self._lock:
            self.error = self.error or err
        self.stop.set()
