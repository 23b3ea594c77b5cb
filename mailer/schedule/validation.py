"""When an issue is scheduled: past times, weekends, two issues in one minute; `validate`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mailer.config import Settings
from mailer.errors import IssueError, Problem
from mailer.folder import Newsletter
from mailer.issue import LoadedIssue, load_issue, load_issues


@dataclass(frozen=True)
class ValidatedIssue:
    """One issue file checked: loaded (or why not), and what is wrong with when it is sent."""

    path: Path
    loaded: LoadedIssue | None
    error: IssueError | None
    errors: list[Problem]
    warnings: list[Problem]

    @property
    def valid(self) -> bool:
        """Say whether the issue has no error at all."""
        return self.error is None and not self.errors


def validate_issues(
    folder: Path, files: Sequence[tuple[Path, str]], settings: Settings | None, now: datetime
) -> list[ValidatedIssue]:
    """Check each (path, as the user wrote it), and its send_at against the folder's issues.

    The folder's issues are loaded once for all the files (linear time, not quadratic).
    """
    in_folder, _failed = load_issues(Newsletter(folder).issue_paths())
    by_path = {loaded.path.resolve(): loaded for loaded in in_folder}
    results = []
    for path, shown in files:
        try:
            loaded = load_issue(path, shown)
        except IssueError as err:
            results.append(ValidatedIssue(path, None, err, [], []))
            continue
        others = [o for p, o in by_path.items() if p != path.resolve()]
        errors, warnings = schedule_problems(folder, loaded, settings, now, others=others)
        results.append(ValidatedIssue(path, loaded, None, errors, [*loaded.warnings, *warnings]))
    return results


def schedule_problems(
    folder: Path,
    loaded: LoadedIssue,
    settings: Settings | None,
    now: datetime,
    *,
    others: Sequence[LoadedIssue] | None = None,
) -> tuple[list[Problem], list[Problem]]:
    """Return (errors, warnings) about when the issue is scheduled, at its send_at line.

    others: the folder's other issues, when the caller has them loaded already.
    """
    send_at = loaded.issue.send_at
    if send_at is None:
        return [], []
    if others is None:
        in_folder, _failed = load_issues(Newsletter(folder).issue_paths())
        others = [o for o in in_folder if o.path.resolve() != loaded.path.resolve()]
    line, column = loaded.source.mark(("send_at",)) or (None, None)

    def problem(message: str, hint: str) -> Problem:
        return Problem(loaded.source.path, line, column, "send_at", message, hint)

    local = send_at.astimezone(settings.zone) if settings else send_at
    warnings, errors = [], []
    if send_at < now:
        warnings.append(
            problem(
                f"{local:%Y-%m-%d %H:%M} is in the past",
                "`mailer send-due` sends it only within max_lateness; set a new time",
            )
        )
    if local.weekday() >= 5:
        warnings.append(problem(f"{local:%A %Y-%m-%d} is a weekend day", "check the date"))
    minute = send_at.replace(second=0, microsecond=0)
    for other in others:
        other_at = other.issue.send_at
        if other_at is not None and other_at.replace(second=0, microsecond=0) == minute:
            errors.append(
                problem(
                    f"{local:%Y-%m-%d %H:%M} is also when {other.path.name} is scheduled",
                    "give each issue its own minute",
                )
            )
    return errors, warnings
