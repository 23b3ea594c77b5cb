"""`mailer send-due`, for cron: send what is due, hold what is not right, say only what is news.

Nothing is silent: an issue is sent, or held with the reason printed once (cron mails it),
logged at every run, and sent to the editor (`notify`) once per distinct cause. A held issue
is tried again at every run while it is within its lateness, so it goes out on the first run
after the fix. After the sends, the archive is published and the editor gets the report.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from mailer.config import Settings
from mailer.errors import DeliveryError, IssueError, LockedError, MailerError
from mailer.folder import Newsletter
from mailer.issue import load_yaml
from mailer.ledger import Ledger, folder_lock
from mailer.schedule.followup import follow_up, outcome_of
from mailer.schedule.notices import held_notice, invalid_notice, late_notice, stopped_notice
from mailer.schedule.repeats import Reporter, said_once
from mailer.schedule.states import RETRY_NOTE, Entry, max_lateness, read_schedule
from mailer.schedule.tick import DueResult, Tick
from mailer.send import SendPlan, SendReport, deliver, prepare_send
from mailer.values import parse_duration

_SHOWN_SKIPPED = 20
_SIGNALS = (129, 130, 143)  # SIGHUP, Ctrl+C, SIGTERM: the run was asked to stop


def send_due(folder: Path, settings: Settings, now: datetime, out: Reporter) -> DueResult:
    """Send every due issue (same path as `send --yes`); hold the others; say each in a line.

    Cron mails whatever a run prints, so a run prints only news: an issue sent, held or
    failing for a new reason; repeats of the same state, and a failure the last run printed
    already, go to the log only. An issue file that cannot be loaded is reported (if it
    seems meant to go out about now), and the other issues go on.
    """
    result = DueResult()
    # The whole run has a deadline: the lock it holds must never be held for ever.
    deadline = time.monotonic() + parse_duration(settings.schedule.run_deadline).total_seconds()
    try:
        # The whole run holds the lock: what it reads of the ledger stays true while it acts.
        with folder_lock(folder), said_once(Newsletter(folder).said_path, out) as once:
            tick = Tick.start(folder, settings, now, once, result, deadline)
            with Ledger.open(folder) as ledger:
                tick.known = {summary.issue_id for summary in ledger.issues()}
            for entry in read_schedule(folder, settings, now):
                if time.monotonic() >= deadline or not _send_entry(tick, entry):
                    break  # a signal, the relay, the deadline, or a quota that holds for all
            if result.exit_code not in _SIGNALS:  # stopping: the next run publishes and tells
                _finish(tick)
            tick.record()
    except LockedError as err:
        # Another send (or send-due) is at work and will finish the job. Cron would mail
        # its owner every few minutes if this printed, so it only goes to the log.
        out.noted(str(err))
        result.worse(75)
    return result


def _send_entry(tick: Tick, entry: Entry) -> bool:
    """Act on one entry; return whether the run may go on to the next."""
    if entry.error is not None:
        if entry.stem not in tick.known and _claims_due(entry.path, tick.now, tick.settings):
            tick.out.failed(str(entry.error))
            tick.result.worse(1)
            tick.events.append(invalid_notice(tick, entry, entry.error))
        return True
    if entry.state == "late":
        _late(tick, entry)
        return True
    if entry.send_at is None or not (entry.state in ("due", "sending") or entry.retry):
        return True  # an issue without send_at is sent by hand, resumed by hand
    try:
        plan = _prepare(tick, entry)
        left = max(1.0, tick.deadline - time.monotonic())
        done = deliver(plan, now=lambda: datetime.now(tick.now.tzinfo), deadline=left)
    except LockedError:
        raise
    except DeliveryError as err:  # the relay itself: every issue would meet it
        tick.out.failed(f"{tick.shown(entry)}: not sent now: {err}")
        tick.result.worse(err.exit_code)
        tick.events.append(stopped_notice(tick, entry, str(err), entry.counts))
        return False
    except MailerError as err:  # something to fix: the list, a check, a setting
        _held(tick, entry, err)
        return True
    return _sent(tick, entry, plan, done)


def _sent(tick: Tick, entry: Entry, plan: SendPlan, done: SendReport) -> bool:
    """Say what the send did; return whether the run may go on to the next issue."""
    out, result, counts = tick.out, tick.result, done.counts
    line = (
        f"{entry.stem}: sent {done.sent_now} now, {counts['sent']} in all; deferred "
        f"{counts['deferred']}, failed {counts['failed']}, unknown {counts['unknown']}"
    )
    if done.sent_now:
        result.sent_issues.append(entry.stem)
    if done.interrupted:
        out.failed(f"{line}; interrupted: the next run resumes it")
        result.worse(done.interrupted)
        return False
    if done.timed_out:
        out.noted(f"{line}; stopped at the run's deadline (run_deadline): the next run goes on")
        return False
    if done.quota is not None:
        left = counts["pending"] + counts["deferred"]
        at = datetime.fromtimestamp(done.quota.free_at, tick.settings.zone)
        said = f"{line}; {done.quota.window} quota reached: {left} left for a run after {at:%H:%M}"
        (out.said if done.sent_now else out.noted)(said)  # waiting for the quota is not news
        cause = f"the {done.quota.window} quota ([limits] in mailer.toml) was reached"
        tick.events.append(stopped_notice(tick, entry, cause, counts, said))
        return False
    if done.stopped is not None:
        out.failed(f"{line}; stopped: {done.stopped}")
        result.worse(done.stopped.exit_code)
        if not done.sent_now:  # else the report says it, with who has the issue
            tick.events.append(stopped_notice(tick, entry, str(done.stopped), counts))
        else:
            tick.reports.append(outcome_of(plan, done))
        return False  # the server, the login or the ledger: the next issue would meet it too
    elif not done.sent_now and done.counts == entry.counts:
        out.noted(line)  # nothing new since the last run: a recipient still deferred, say
        result.worse(0 if done.complete else 3)
        return True
    else:
        (out.said if done.complete else out.failed)(line)
        result.worse(0 if done.complete else 3)
    if done.sent_now:
        if done.stopped is None:  # ended well: a cause told before is news if it comes back
            tick.resolved.append(entry.stem)
        for problem in plan.scan.problems[:_SHOWN_SKIPPED]:  # [recipients] skip_invalid
            out.failed(f"{tick.shown(entry)}: not sent to: {problem}")
        tick.reports.append(outcome_of(plan, done))
    return True


def _late(tick: Tick, entry: Entry) -> None:
    """Hold an issue too late to go out by itself: say so once, and tell the editor."""
    lateness = _lateness(tick.settings, entry)
    _hold(tick.folder, entry, entry.note, tick.now)
    tick.out.failed(
        f"{tick.shown(entry)}: not sent: {entry.note.removesuffix(': held back')} (send_at "
        f"{entry.send_at:%Y-%m-%d %H:%M %z}, max_lateness {lateness}); held back. To send it "
        f"now on purpose: {tick.command(entry)}"
    )
    tick.result.worse(1)
    tick.events.append(late_notice(tick, entry, lateness))


def _held(tick: Tick, entry: Entry, err: MailerError) -> None:
    """Hold the issue for something to fix: said once, a line in the log at every run."""
    reason = f"not sent: {err}".splitlines()[0]
    before = entry.note.split(RETRY_NOTE, 1)[0] if entry.retry else None
    _hold(tick.folder, entry, reason, tick.now)
    tick.result.worse(err.exit_code)
    if before == reason:
        tick.out.noted(f"{tick.shown(entry)}: still held: {reason.removeprefix('not sent: ')}")
    else:
        tick.out.failed(
            f"{tick.shown(entry)}: not sent, held back: {err}\nEvery run tries it again, so "
            f"it goes out once this is fixed; or now: {tick.command(entry)}"
        )
    assert entry.loaded is not None
    lateness = max_lateness(tick.settings, entry.loaded)
    tick.events.append(held_notice(tick, entry, err, lateness))


def _finish(tick: Tick) -> None:
    """Publish the archive and tell the editor; report either failing."""
    try:
        done = follow_up(
            tick.folder,
            tick.settings,
            tick.now,
            sent=bool(tick.result.sent_issues),
            reports=tick.reports,
            events=tick.events,
            resolved=tick.resolved,
            notify=True,
        )
    except MailerError as err:  # the ledger file cannot be written: the run is over anyway
        tick.out.failed(f"after the sends: {err}")
        tick.result.worse(err.exit_code)
        return
    if done.published is not None:
        tick.out.said(str(done.published))
    if done.publish_error is not None:
        tick.out.failed(str(done.publish_error))
        tick.result.worse(done.publish_error.exit_code)
    for subject in done.told.sent:
        tick.out.noted(f"told {', '.join(tick.settings.notify)}: {subject}")
    if done.told.problem is not None:
        tick.out.failed(f"{done.told.problem}; `mailer status` keeps the reason")
        tick.notify_problem = done.told.problem


def _prepare(tick: Tick, entry: Entry) -> SendPlan:
    """Prepare the issue's send; a crash loading or rendering it stops only this issue."""
    shown = tick.shown(entry)
    try:
        return prepare_send(tick.folder, entry.path, shown_issue=shown)
    except MailerError:
        raise
    except Exception as err:  # a bug, or a file that changed since: the other issues go on
        raise IssueError(f"{shown}: cannot be prepared ({type(err).__name__}: {err})") from err


def _lateness(settings: Settings, entry: Entry) -> str:
    assert entry.loaded is not None
    return entry.loaded.issue.max_lateness or settings.schedule.max_lateness


def _hold(folder: Path, entry: Entry, reason: str, now: datetime) -> None:
    assert entry.send_at is not None
    with Ledger.open(folder) as ledger:
        ledger.hold(entry.stem, reason, entry.send_at, now)


def _claims_due(path: Path, now: datetime, settings: Settings) -> bool:
    """Say whether an invalid issue file seems meant to go out about now (so say it is broken)."""
    try:
        data = load_yaml(path).data
    except Exception:  # not even YAML, or worse: it may be meant to go out
        return True
    if not isinstance(data, dict) or "send_at" not in data:
        return False  # a draft without a schedule is nobody's business yet
    try:
        send_at = datetime.fromisoformat(str(data["send_at"]))
        window = parse_duration(settings.schedule.max_lateness)
        return send_at <= now and now - send_at <= window
    except (TypeError, ValueError):
        return True
