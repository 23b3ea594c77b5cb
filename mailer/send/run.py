"""Deliver a planned send to every recipient exactly once, resumably; or send a proof."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from mailer.addresses import validate_address
from mailer.config import Settings
from mailer.errors import DeliveryError, IssueError, LedgerError, MailerError, RecipientsError
from mailer.ledger import Ledger, folder_lock
from mailer.mime import MessageFactory
from mailer.recipients import Recipient
from mailer.send.pacing import QuotaReached
from mailer.send.plan import SendPlan, utc_now
from mailer.send.workers import Clock, DeliveryRun, Progress
from mailer.smtp import ConnectionLost, Outcome, SmtpConnection

FENCE_BATCH = 50  # recipients reserved by one fsync: see mailer.ledger
CHECKPOINT_EVERY = 1000  # messages between WAL checkpoints in a long run


@dataclass
class SendReport:
    """What a real send did, for the closing summary."""

    issue_id: str
    counts: dict[str, int]
    sent_now: int = 0
    recovered_unknown: int = 0
    skipped_duplicates: int = 0
    skipped_unsubscribed: int = 0
    skipped_invalid: int = 0
    stopped: MailerError | None = None
    interrupted: int | None = None  # the exit code of the signal that stopped the run
    quota: QuotaReached | None = None  # the run stopped at a quota; the rest waits
    timed_out: bool = False  # the run stopped at its deadline; the rest waits
    requeued_failed: int = 0

    @property
    def complete(self) -> bool:
        """Return whether every recipient of the issue has been sent to."""
        return not any(self.counts.get(s, 0) for s in ("pending", "deferred", "failed", "unknown"))


def deliver(
    plan: SendPlan,
    *,
    resend_unknown: bool = False,
    retry_failed: bool = False,
    allow_changes: bool = False,
    progress: Progress | None = None,
    started: Callable[[int], None] | None = None,
    stopping: Callable[[], None] | None = None,
    now: Clock = utc_now,
    deadline: float | None = None,
) -> SendReport:
    """Send to every recipient not yet sent, holding the folder lock; resumable at any point.

    deadline: seconds after which the run stops cleanly (send-due's whole-run deadline).
    """
    with (
        folder_lock(plan.folder),
        Ledger.open(plan.folder, durability=plan.settings.durability) as ledger,
    ):
        factory = plan.factory()
        ledger.reconcile()  # a ledger set back in time is brought forward first
        previous = ledger.start_issue(plan.issue_id, plan.content_hash, now())
        if previous is not None:
            if not allow_changes:
                sent = ledger.counts(plan.issue_id).get("sent", 0)
                raise IssueError(
                    f"{plan.loaded.path}: the issue, its layout, its settings or the "
                    f"recipients file ({plan.recipients_path}) changed since it was first sent "
                    f"({sent} already sent); send with what you first used, or pass "
                    "--allow-changes to send this to the rest"
                )
            ledger.set_content_hash(plan.issue_id, plan.content_hash)
        recovered = ledger.recover(plan.issue_id, now=now())
        requeued = ledger.requeue(plan.issue_id, None, now()) if retry_failed else 0
        ledger.add_pending(
            plan.issue_id,
            ((r.key, r.email, factory.message_id(r.key)) for r in plan.recipients()),
            now(),
        )
        to_send = ledger.keys_to_send(plan.issue_id, resend_unknown=resend_unknown)
        if started is not None:
            started(len(to_send))
        ledger.lift_hold(plan.issue_id)
        sent_times = ledger.sent_since(now() - timedelta(days=1))  # the quotas span runs
        run = DeliveryRun(plan, factory, progress, now, sent_times)
        on_list: set[str] = set()
        # At the deadline (seconds from now) the run stops as a signal stops it, cleanly.
        timer = threading.Timer(deadline, run.time_out) if deadline is not None else None
        try:
            if timer is not None:
                timer.daemon = True
                timer.start()
            run.start()
            _feed(plan, ledger, run, factory, to_send, on_list)
        except MailerError as err:  # the list changed under the run, say: some may have it
            run.halt(DeliveryError(f"{err}; what is left waits for the next run"))
        except KeyboardInterrupt as stop:
            run.interrupted = getattr(stop, "exit_code", 130)
            run.stop.set()
            if stopping is not None:
                stopping()  # the wait for a reply can be long: say why nothing ends at once
        finally:
            run.finish()
            if timer is not None:
                timer.cancel()
        if run.crash is not None:
            raise run.crash
        try:
            _close_run(plan, ledger, run, on_list, now)
        except LedgerError as err:
            # Messages may have gone out: never exit 1 ("nothing was sent"). What the ledger
            # could not record, the next run settles (reserved rows go back, sending ones
            # are unknown).
            run.error = run.error or DeliveryError(str(err))
        try:
            counts = ledger.counts(plan.issue_id)
        except LedgerError as err:
            raise DeliveryError(f"{err} (the run had sent {run.sent} now)") from err
        return SendReport(
            issue_id=plan.issue_id,
            counts=counts,
            sent_now=run.sent,
            recovered_unknown=recovered,
            skipped_duplicates=plan.scan.duplicates,
            skipped_unsubscribed=plan.scan.unsubscribed,
            skipped_invalid=len(plan.scan.problems),
            stopped=run.error,
            interrupted=run.interrupted,
            quota=run.limiter.reached,
            timed_out=run.timed_out,
            requeued_failed=requeued,
        )


def _close_run(
    plan: SendPlan, ledger: Ledger, run: DeliveryRun, on_list: set[str], now: Clock
) -> None:
    """Give back what is reserved, mark who left the list, and make the ledger current."""
    ledger.release(plan.issue_id, now())  # reserved but not sent: pending again
    if not run.stop.is_set():
        # Whoever is still to do but was not on the list this time (taken off it, or
        # unsubscribed) will not be sent to: say so, so the issue can finish.
        gone = [r.recipient_key for r in ledger.to_send(plan.issue_id)]
        ledger.mark_removed(plan.issue_id, [k for k in gone if k not in on_list], now())
    ledger.mark_finished(plan.issue_id, now())
    ledger.mark_journal_applied()  # every worker has finished: nothing is in flight
    ledger.checkpoint()


def batch_size(settings: Settings) -> int:
    """Return how many recipients a reservation takes: 50, or a second's worth if fewer."""
    return max(1, min(FENCE_BATCH, math.ceil(settings.limits.per_second)))


def _feed(
    plan: SendPlan,
    ledger: Ledger,
    run: DeliveryRun,
    factory: MessageFactory,
    to_send: set[str],
    on_list: set[str],
) -> None:
    """Stream the list; reserve each batch of those still to send, then queue it."""
    size, batch, reserved = batch_size(plan.settings), [], 0
    for recipient in plan.recipients():
        if run.stop.is_set():
            return
        on_list.add(recipient.key)
        if recipient.key in to_send:
            batch.append(recipient)
        if len(batch) >= size:
            reserved += _reserve_and_queue(plan, ledger, run, factory, batch)
            batch = []
            if reserved % CHECKPOINT_EVERY < size:
                try:
                    ledger.checkpoint(passive=True)  # keep the main file current in long runs
                except LedgerError as err:
                    run.halt(DeliveryError(str(err)))
    if batch:
        _reserve_and_queue(plan, ledger, run, factory, batch)


def _reserve_and_queue(
    plan: SendPlan,
    ledger: Ledger,
    run: DeliveryRun,
    factory: MessageFactory,
    batch: list[Recipient],
) -> int:
    rows = [(r.key, r.email, factory.message_id(r.key)) for r in batch]
    try:
        ledger.reserve(plan.issue_id, rows, run.now())
    except LedgerError as err:
        run.halt(DeliveryError(str(err)))
        return 0
    for recipient in batch:
        if not run.put(recipient):
            break
    return len(batch)


def send_test(
    plan: SendPlan, addresses: list[str], *, now: Clock = utc_now
) -> list[tuple[str, Outcome]]:
    """Send a marked proof to the given addresses only; the ledger is not touched."""
    bad = [f'"{a}": {problem}' for a in addresses if (problem := validate_address(a))]
    if bad:
        raise RecipientsError("--test: " + "; ".join(bad))
    factory = plan.factory(test=True)
    results = []
    with SmtpConnection(plan.settings.smtp) as connection:
        for address in addresses:
            message = factory.build({"email": address}, now=now())
            try:
                outcome = connection.send(
                    factory.envelope_sender,
                    message.recipient,
                    message.data,
                    on_accepted=lambda: None,
                )
            except ConnectionLost as err:
                outcome = Outcome("unknown", None, str(err))
            results.append((address, outcome))
            if not connection.is_open:
                connection.open()
    return results
