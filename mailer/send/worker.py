"""One SMTP connection's share of a send: take reserved recipients, send, record each step.

Per message: the commands (pipelined when the server offers it), the replies, `sending`
committed to the ledger, then the data and its final dot, followed in the same write by the
next message's commands when one is ready, and the outcome committed after the reply.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailer.errors import DeliveryError, LedgerError
from mailer.ledger import Ledger
from mailer.mime import BuiltMessage, MessageError
from mailer.recipients import Recipient
from mailer.send.link import Link
from mailer.smtp import ConnectionLost, Envelope, Outcome, SenderRefused

if TYPE_CHECKING:
    from mailer.send.workers import DeliveryRun

MAX_RECONNECTS = 3  # per message: a connection that keeps dropping is a server problem


@dataclass
class Job:
    """One recipient's message, and how often it was tried in this run."""

    recipient: Recipient
    message: BuiltMessage
    envelope: Envelope
    retries: int = 0
    reconnects: int = 0
    reservation: float | None = None  # its place in the rate limit, once taken
    not_before: float = 0.0  # a retry's back-off: time.monotonic() it may go again


class Worker:
    """Send the run's jobs over one connection, with one ledger handle (one thread)."""

    def __init__(self, run: DeliveryRun, ledger: Ledger) -> None:
        self.run = run
        self.ledger = ledger
        limits = run.plan.settings.limits
        self.link = Link(run, limits.messages_per_connection)
        # Come before the queue: retries, returned look-aheads and messages built ahead.
        self.todo: deque[Job] = deque()
        self.unbuilt: deque[Recipient] = deque()  # taken ahead, but their build failed
        self.finishing = False  # the run said there is nothing more to take

    def close(self) -> None:
        """Say QUIT."""
        self.link.close()

    def work(self) -> None:
        """Send until the run is told to finish or stop."""
        job = self._take(block=True)
        while job is not None and not self.run.stop.is_set():
            job = self._send(job)

    def _take(self, *, block: bool) -> Job | None:
        """Return the next job: one put back or due for its retry, or a recipient from the
        queue; with block, wait for one (None: the run is finishing, or nothing now)."""
        while not self.run.stop.is_set() or not block:
            ready = next((job for job in self.todo if job.not_before <= time.monotonic()), None)
            if ready is not None:
                self.todo.remove(ready)
                return ready
            if self.unbuilt:  # its build failed while building ahead: met again now, in turn
                recipient: Recipient | None = self.unbuilt.popleft()
            else:
                waiting = min((job.not_before for job in self.todo), default=None)
                if self.finishing:
                    if waiting is None or not block:
                        return None
                    self.run.stop.wait(waiting - time.monotonic())  # a retry's back-off
                    continue
                try:
                    if not block:
                        recipient = self.run.jobs.get_nowait()
                    elif waiting is None:
                        recipient = self.run.jobs.get()
                    else:
                        timeout = max(0.0, waiting - time.monotonic())
                        recipient = self.run.jobs.get(timeout=timeout)
                except queue.Empty:
                    if not block:
                        return None
                    continue
            if recipient is None:  # the run is finishing: one None for each worker
                self.finishing = True
                continue
            try:
                return self._build(recipient)
            except MessageError as err:
                self._record_outcome(recipient, Outcome("failed", None, str(err)), final=True)
        return None

    def _build(self, recipient: Recipient) -> Job:
        """Build the recipient's message; raise MessageError for one we refuse to send."""
        message = self.run.factory.build(recipient.fields, now=self.run.now())
        sender = self.run.factory.envelope_sender
        return Job(recipient, message, Envelope(sender, message.recipient, message.wire))

    def _send(self, job: Job) -> Job | None:
        """Send one job; return the next one (already begun when it was pipelined)."""
        run, link = self.run, self.link
        if job.reservation is None:
            job.reservation = run.limiter.wait(run.stop)
            if run.stop.is_set():  # stopped while waiting for its turn: do not send
                return self._put_back(job)
        following: Job | None = None
        marked = False
        try:
            link.ready()
            link.begin(job.envelope)
            refusal = link.accept(job.envelope)
            if refusal is not None:
                self._settle(job, refusal)
                return self._take(block=True)
            self._mark_sending(job)
            marked = True
            link.carried += 1
            following = self._look_ahead()
            link.transmit(job.envelope, following.envelope if following else None)
            self._prefetch()
            outcome = link.result(job.envelope)
        except ConnectionLost as lost:
            return self._lost(job, following, str(lost), marked=marked)
        except SenderRefused as refused:
            # Not this recipient's doing: it waits, with the others, for a later run.
            if following is not None:
                self._return(following)
            self._wait(job, refused.outcome)
            raise
        self._settle(job, outcome)
        if following is not None and link.is_open:
            return following
        if following is not None:
            self._return(following)  # its commands went out on a dead line: no data did
        return self._take(block=True)

    def _look_ahead(self) -> Job | None:
        """Return a job whose commands may follow this message's data, if one is ready now."""
        if not (self.link.pipelining and self.link.has_room()):
            return None
        job = self._take_ahead()
        if job is None:
            return None
        job.reservation = self.run.limiter.try_wait()
        if job.reservation is None:  # not its turn yet: it goes lockstep after this one
            self.todo.appendleft(job)
            return None
        return job

    def _prefetch(self) -> None:
        """Build the next message while the server reads this one's data."""
        if self.link.has_room() and not any(j.not_before <= time.monotonic() for j in self.todo):
            job = self._take_ahead()
            if job is not None:
                self.todo.appendleft(job)

    def _take_ahead(self) -> Job | None:
        """Return the next job if there is one now, built, and record nothing.

        This runs while a message is in flight: one that cannot be built is met again by
        _take, which records it after that message's outcome is committed (a failing write
        must not cost it that).
        """
        ready = next((job for job in self.todo if job.not_before <= time.monotonic()), None)
        if ready is not None:
            self.todo.remove(ready)
            return ready
        if self.run.stop.is_set() or self.finishing or self.unbuilt:
            return None
        try:
            recipient = self.run.jobs.get_nowait()
        except queue.Empty:
            return None
        if recipient is None:  # the run is finishing: this worker's None
            self.finishing = True
            return None
        try:
            return self._build(recipient)
        except Exception:  # built again, and recorded or raised, when _take meets it
            self.unbuilt.append(recipient)
            return None

    def _mark_sending(self, job: Job) -> None:
        """Commit `sending`; if the ledger cannot be written, the final dot never goes out."""
        try:
            self.ledger.mark_sending(self.run.plan.issue_id, job.recipient.key, self.run.now())
        except LedgerError as err:
            self.link.abort()  # the server drops a message whose data never ended
            raise DeliveryError(str(err)) from err

    def _lost(self, job: Job, following: Job | None, reason: str, *, marked: bool) -> Job | None:
        """The line died before the job's final dot went out: nothing was handed over."""
        if following is not None:
            self._return(following)
        if marked:
            # The data had started: the server drops a message whose final dot never came.
            text = f"connection lost before the message data was sent ({reason})"
            self._settle(job, Outcome("deferred", None, text))
            return self._take(block=True)
        job.reconnects += 1
        if job.reconnects > MAX_RECONNECTS:
            self._return(job)
            raise DeliveryError(
                f"{self.run.plan.server}: the connection dropped {job.reconnects} times in a "
                "row; what is left is pending: run the same command again later"
            )
        return self._put_back(job)

    def _put_back(self, job: Job) -> Job | None:
        """Return a job untried to the front of the line, and take the next one."""
        self._return(job)
        return self._take(block=True) if not self.run.stop.is_set() else None

    def _return(self, job: Job) -> None:
        """Put a job untried at the front of the line, giving back its place in the rate."""
        if job.reservation is not None:
            self.run.limiter.release(job.reservation)
            job.reservation = None
        self.todo.appendleft(job)

    def _settle(self, job: Job, outcome: Outcome) -> None:
        """Record the outcome; retry a temporary refusal within this run, with back-off."""
        run, limits = self.run, self.run.plan.settings.limits
        if outcome.kind != "sent" and job.reservation is not None:
            run.limiter.release(job.reservation)
        job.reservation = None
        issue_id, key, now, code = run.plan.issue_id, job.recipient.key, run.now(), outcome.code
        if outcome.kind == "deferred" and job.retries < limits.retries:
            self._write(
                lambda: self.ledger.mark_deferred(issue_id, key, code or 0, outcome.text, now)
            )
            # Its retry waits its back-off in the line, not in this thread: a message whose
            # commands already follow on the connection goes on meanwhile.
            job.not_before = time.monotonic() + limits.retry_delay * 2**job.retries
            job.retries += 1
            self.todo.append(job)
            return
        if outcome.kind == "sent":
            self._write(lambda: self.ledger.mark_sent(issue_id, key, code or 0, outcome.text, now))
        elif outcome.kind == "deferred":
            self._write(
                lambda: self.ledger.mark_deferred(issue_id, key, code or 0, outcome.text, now)
            )
        elif outcome.kind == "failed":
            self._write(
                lambda: self.ledger.mark_failed(issue_id, key, code or 0, outcome.text, now)
            )
        else:
            self._write(lambda: self.ledger.mark_unknown(issue_id, key, outcome.text, now))
        self._record_outcome(job.recipient, outcome, final=False)

    def _wait(self, job: Job, outcome: Outcome) -> None:
        issue_id, key, now = self.run.plan.issue_id, job.recipient.key, self.run.now()
        code, text = outcome.code or 0, outcome.text
        self._write(lambda: self.ledger.mark_pending(issue_id, key, code, text, now))

    def _record_outcome(self, recipient: Recipient, outcome: Outcome, *, final: bool) -> None:
        if final:  # a message refused before any SMTP: its ledger row says why
            self._write(
                lambda: self.ledger.mark_failed(
                    self.run.plan.issue_id, recipient.key, 0, outcome.text, self.run.now()
                )
            )
        suspects = self.run.record(recipient, outcome)
        if suspects:
            # The same refusal for several people in a row is the relay's policy, not theirs:
            # they wait for a later run, as everyone else not yet sent does.
            self._write(
                lambda: self.ledger.requeue(self.run.plan.issue_id, suspects, self.run.now())
            )
            if len(suspects) > 1:  # this worker saw the run stop; the others only put back
                raise DeliveryError(
                    f"{self.run.plan.server}: the server gave {len(suspects)} recipients in a "
                    f"row the same refusal ({outcome.code} {outcome.text}): that is its policy "
                    "for this sender or message, not theirs. Nothing more is sent now and "
                    "nobody is marked failed; ask the mail administrator, then run the same "
                    "command again"
                )

    @staticmethod
    def _write(change: Callable[[], object]) -> None:
        """Commit a ledger change; a ledger that cannot be written stops the run."""
        try:
            change()
        except LedgerError as err:
            raise DeliveryError(str(err)) from err
