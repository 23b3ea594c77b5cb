"""After a send by hand: nothing to send (said, not asked), the archive published, the editor
told (with notify_manual); and the last unattended run, which `mailer status` shows first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailer.cli.output import fail, run, say, warn

if TYPE_CHECKING:
    from pathlib import Path

    from mailer.send import SendPlan, SendReport


def nothing_to_send(plan: SendPlan) -> int:
    """Say that a re-run has nobody to send to, and why; ask nothing. Return the exit code."""
    from mailer.ledger import read_status

    (status,) = run(lambda: read_status(plan.folder, plan.issue_id))
    counts = status.summary.counts
    trouble = {state: counts.get(state, 0) for state in ("failed", "unknown")}
    if not any(trouble.values()):
        say(f"{plan.issue_id}: everyone on the list already has this issue; nothing was sent")
        return 0
    figures = ", ".join(f"{n} {state}" for state, n in trouble.items() if n)
    say(
        f"{plan.issue_id}: nothing was sent: {counts.get('sent', 0)} have it, {figures}; "
        "--retry-failed sends to the failed again, --resend-unknown to the unknown"
    )
    return 3  # as the send that left them so: some recipients failed or are unknown


def follow_up_send(plan: SendPlan, report: SendReport, code: int) -> int:
    """Publish the archive after a send, and report to `notify` if notify_manual; the code."""
    from mailer.schedule import follow_up, outcome_of
    from mailer.send import utc_now

    settings = plan.settings
    sent = report.sent_now > 0
    ended_well = sent and report.stopped is None and report.quota is None
    reports = [outcome_of(plan, report)] if sent and settings.notify_manual else []
    done = run(
        lambda: follow_up(
            plan.folder,
            settings,
            utc_now(),
            sent=sent,
            reports=reports,
            events=[],
            resolved=[plan.issue_id] if ended_well else [],
            notify=settings.notify_manual,
        )
    )
    if done.published is not None:
        say(str(done.published))
    if done.publish_later is not None:
        say(done.publish_later)
    if done.publish_error is not None:
        # The mail went out: exit 3 ("the run ended, but..."), never 1 ("nothing was sent").
        fail(f"{done.publish_error}\nthe issue was sent; its archive links wait for a publish")
        code = code or done.publish_error.exit_code
    for subject in done.told.sent:
        say(f"told {', '.join(settings.notify)}: {subject}")
    if done.told.problem is not None:
        warn(done.told.problem)
    return code


def show_last_run(folder: Path) -> None:
    """Say what the last unattended run did, and what the editor was not told (status)."""
    from datetime import datetime

    from mailer.folder import Newsletter
    from mailer.notify import NotifyStore

    store = run(lambda: NotifyStore.open_existing(folder))
    if store is None:
        return
    with store:
        last = run(store.last_run)
        unsent = run(store.unsent)
    if last is not None:
        zone = Newsletter(folder).settings.zone
        when = datetime.fromisoformat(last.started_at).astimezone(zone)
        did = f"exit code {last.exit_code}" + ("" if last.lines else "; nothing to do")
        say(f"last unattended run (send-due): {when:%a %Y-%m-%d %H:%M %Z}, {did}")
        for line in [part for text in last.lines for part in text.splitlines()][:_RUN_LINES]:
            say(f"  {line}")
    for subject, state, error in unsent[:_UNSENT]:
        why = {
            "pending": "not told yet; the next run tries again",
            "sending": "may not have reached the editor",
            "failed": "refused for good",
        }[state]
        say(f"notification {why}: {subject}" + (f" ({error})" if error else ""))


_RUN_LINES = 30
_UNSENT = 5
