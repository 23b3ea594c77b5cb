"""After a send (by cron or by hand): the archive rebuilt and published, the editor told.

The archive is published when anything went out since its last good publish (a failed
publish is tried again at every later run), so every view-in-browser and calendar link in a
sent email leads to a published file. A failed publish does not unsend anything: the run
reports it like a failed send, exit code 3.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from mailer.config import Settings
from mailer.errors import LockedError, MailerError
from mailer.folder import Newsletter
from mailer.ledger import folder_lock, read_status
from mailer.notify import Event, Outcome, Told, problem_event, report_event, tell_editor
from mailer.publish import (
    PublishError,
    PublishReport,
    build_archive,
    is_unpublished,
    mark_unpublished,
    publish_archive,
)
from mailer.send import SendPlan, SendReport


@dataclass
class FollowUp:
    """What followed the sends: the publish (or why not), and what the editor was told."""

    published: PublishReport | None = None
    publish_error: PublishError | None = None
    publish_later: str | None = None  # another run holds the folder: it publishes
    told: Told = field(default_factory=Told)


def outcome_of(plan: SendPlan, report: SendReport) -> Outcome:
    """Return the send's result as the editor's report tells it, with who failed and why."""
    rows = []
    for status in read_status(plan.folder, plan.issue_id):
        for row in status.problems:
            code = f"{row.last_code} " if row.last_code else ""
            rows.append(f"{row.email}: {row.state} ({code}{row.last_text or 'no reply'})")
    skipped = {
        "unsubscribed or suppressed": report.skipped_unsubscribed,
        "duplicate": report.skipped_duplicates,
        "invalid row(s)": report.skipped_invalid,
    }
    return Outcome(
        issue_id=plan.issue_id,
        path=Newsletter(plan.folder).shown(plan.loaded.path),
        subject=plan.loaded.issue.subject,
        counts=report.counts,
        sent_now=report.sent_now,
        skipped=skipped,
        invalid_rows=[str(problem) for problem in plan.scan.problems],
        problems=rows,
        stopped=None if report.stopped is None else str(report.stopped).splitlines()[0],
    )


def follow_up(
    folder: Path,
    settings: Settings,
    now: datetime,
    *,
    sent: bool,
    reports: list[Outcome],
    events: list[Event],
    resolved: list[str],
    notify: bool,
) -> FollowUp:
    """Publish the archive if anything went out since its last publish; then tell the editor.

    sent: this run sent someone an issue. reports: the sends to report. events: problems
    met on the way. resolved: issues whose earlier problems are over (sent since).
    """
    newsletter = Newsletter(folder, settings)
    done = FollowUp()
    if sent and settings.archive.publishes:
        mark_unpublished(newsletter)  # kept until a publish succeeds: the next run retries
    if is_unpublished(newsletter):
        try:
            with folder_lock(folder):  # one publish at a time (send-due holds it already)
                build_archive(folder, newsletter.archive_dir, now=now)
                done.published = publish_archive(newsletter, newsletter.archive_dir)
        except LockedError:
            done.publish_later = "the archive is published by the send running now"
        except PublishError as err:
            done.publish_error = err
        except MailerError as err:  # the build itself: build/ is not ours, a full disk
            done.publish_error = PublishError(f"the archive was not built, so not published: {err}")
    told = list(events)
    if done.publish_error is not None:
        text = str(done.publish_error)
        told.append(
            problem_event(
                "publish",
                "",
                text,
                "the web archive was not published",
                [
                    "The issue went out, but the web archive (its view-in-browser and calendar "
                    "links) was not published:",
                    "",
                    text,
                    "",
                    "Next step: fix it; every run tries again, or run `mailer archive`.",
                ],
            )
        )
    for outcome in reports:
        told.append(
            report_event(
                outcome,
                _archive_line(newsletter, outcome, done),
                _next_steps(newsletter, outcome, done),
                now.astimezone(settings.zone),
            )
        )
    if notify:
        gone = [*resolved, *([""] if done.published is not None else [])]
        done.told = tell_editor(folder, settings, told, now, resolved=gone)
    return done


def _archive_line(newsletter: Newsletter, outcome: Outcome, done: FollowUp) -> str:
    link = newsletter.view_url(outcome.issue_id)
    if done.publish_error is not None:
        return f"not published (see above): {done.publish_error}".splitlines()[0]
    if not newsletter.settings.archive.publishes:
        return "not published ([archive] publish_dir or publish_command is not set)"
    if link is None:
        return "published; archive_url is not set, so the email does not link to it"
    return link


def _next_steps(newsletter: Newsletter, outcome: Outcome, done: FollowUp) -> list[str]:
    counts, issue = outcome.counts, outcome.issue_id
    command = f"mailer --dir {shlex.quote(str(newsletter.dir))} send {outcome.path} --yes"
    steps = []
    if done.publish_error is not None:
        steps.append("fix the publishing (see Archive); every run tries again")
    if outcome.stopped:
        steps.append("the next run resumes the send once the cause is gone")
    if outcome.invalid_rows:
        steps.append(f"fix the rows listed under Skipped; then `{command}` sends to them")
    if counts.get("failed"):
        steps.append(f"see `mailer status {issue}`; `{command} --retry-failed` tries again")
    if counts.get("unknown"):
        steps.append(f"the unknown may have it; `{command} --resend-unknown` sends to them again")
    if counts.get("deferred") or counts.get("pending"):
        steps.append("the deferred are retried by the next run")
    return steps or ["none: everyone on the list has it"]
