"""Load an issue file: validate it strictly, with errors that point at the line."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mailer.errors import IssueError, MailerError, Problem
from mailer.issue.markdown import check_markdown, check_url
from mailer.issue.placeholders import check_placeholders
from mailer.issue.schema import BLOCK_TYPES, Issue
from mailer.issue.source import UNQUOTED, Loc, YamlSource, dotted, load_yaml


@dataclass(frozen=True)
class LoadedIssue:
    """A valid issue with where it came from and what deserves a warning."""

    path: Path
    issue: Issue
    content_hash: str
    warnings: tuple[Problem, ...]
    source: YamlSource = field(repr=False, compare=False)  # where each value stands

    @cached_property  # asked for twice a message while sending
    def stem(self) -> str:
        """Return the file name without .yaml: the issue's id in outputs and the ledger."""
        return self.path.stem


def load_issue(path: Path, display: str | None = None) -> LoadedIssue:
    """Load and validate an issue file; raise IssueError listing every problem with its line."""
    source = load_yaml(path, display)
    problems = list(source.problems)
    warnings: list[Problem] = []
    _check_content(source, source.data, (), problems, warnings)
    issue: Issue | None = None
    if not isinstance(source.data, dict):
        problems.append(Problem(source.path, 1, 1, "", "an issue must be a mapping of keys"))
    else:
        try:
            issue = Issue.model_validate(source.data)
        except ValidationError as err:
            seen = {(p.where, p.message) for p in problems}
            for error in err.errors():
                problem = _problem(source, error)
                if (problem.where, problem.message) not in seen:
                    problems.append(problem)
                    seen.add((problem.where, problem.message))
    if problems or issue is None:
        problems.sort(key=lambda p: (p.line or 0, p.column or 0))
        noun = "problem" if len(problems) == 1 else "problems"
        raise IssueError(f"{source.path}: {len(problems)} {noun}", problems)
    return LoadedIssue(path, issue, source.digest, tuple(warnings), source)


def try_load_issue(path: Path, display: str | None = None) -> LoadedIssue | IssueError:
    """Load an issue for a command that goes on to other files: return the error, not raise it.

    Whatever goes wrong with one file (a loader bug included) becomes an IssueError naming
    the file, so that one bad file never stops the others.
    """
    shown = display or str(path)
    try:
        return load_issue(path, shown)
    except IssueError as err:
        return err
    except MailerError as err:
        failed = IssueError(str(err), err.problems)
    except Exception as err:  # a bug, but only this file's: the other issues go on
        failed = IssueError(
            f"{shown}: cannot be loaded ({type(err).__name__}: {err}); "
            f"`mailer validate {shown}` shows the details"
        )
        failed.__cause__ = err
    return failed


def load_issues(
    paths: Iterable[Path], shown: Callable[[Path], str] = str
) -> tuple[list[LoadedIssue], list[IssueError]]:
    """Load each file once; return the valid issues and the errors of the others."""
    loaded: list[LoadedIssue] = []
    failed: list[IssueError] = []
    for path in paths:
        result = try_load_issue(path, shown(path))
        if isinstance(result, IssueError):
            failed.append(result)
        else:
            loaded.append(result)
    return loaded, failed


def _check_content(
    source: YamlSource, value: Any, loc: Loc, problems: list[Problem], warnings: list[Problem]
) -> None:
    """Check links, Markdown and placeholders in every string, with exact lines."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_content(source, item, (*loc, key), problems, warnings)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_content(source, item, (*loc, index), problems, warnings)
        return
    if not isinstance(value, str):
        return
    line, column = source.mark(loc) or (None, None)
    where = dotted(loc)
    for message in check_placeholders(value):
        problems.append(Problem(source.path, line, column, where, message))
    key = loc[-1] if loc else ""
    if key in ("url", "src"):
        _error, warning = check_url(value)  # errors come from the schema, with their type
        if warning:
            warnings.append(Problem(source.path, line, column, where, warning))
    elif key in ("body", "intro"):
        offset = 1 if loc in source.block_scalars else 0
        for delta, message, is_error in check_markdown(value):
            at = (line + offset + delta) if line is not None and offset else line
            found = Problem(source.path, at, None if offset else column, where, message)
            (problems if is_error else warnings).append(found)


_HINTS = {
    "missing": "required; add it",
    "extra_forbidden": "unknown key; check its spelling (see the issue schema in the README)",
    "timezone_aware": "needs a UTC offset, e.g. 2023-10-20T09:00:00+01:00",
    "too_short": "needs at least one entry",
}


def _problem(source: YamlSource, error: Any) -> Problem:
    """Turn one Pydantic error into a Problem at the right line."""
    loc = _data_loc(source.data, tuple(error["loc"]))
    kind = error["type"]
    if kind == "extra_forbidden":
        mark = source.key_mark(loc)
    elif kind == "missing":
        mark = source.mark(loc[:-1])
    else:
        mark = source.mark(loc)
    line, column = mark or (None, None)
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in _HINTS:
        message = _HINTS[kind]
    elif kind == "string_type" and isinstance(error.get("input"), dict):
        message = UNQUOTED
    elif kind == "union_tag_invalid":
        message = f'unknown block type "{error["ctx"]["tag"]}"; use one of {", ".join(BLOCK_TYPES)}'
        line, column = source.mark((*loc, "type")) or (line, column)
    elif kind == "union_tag_not_found":
        message = f"a block needs a type: one of {', '.join(BLOCK_TYPES)}"
    elif kind.startswith(("date_", "datetime_")):
        shown = error.get("input")
        message = f'not a date ("{shown}"); use YYYY-MM-DD'
        if loc and loc[-1] == "send_at":
            message = f'not a date and time ("{shown}"); use 2023-10-20T09:00:00+01:00'
    elif kind == "string_pattern_mismatch" and loc and loc[-1] == "layout":
        message = "a layout is a folder name in layouts/ (letters, digits, - and _)"
    return Problem(source.path, line, column, dotted(loc), message)


def _data_loc(data: Any, loc: tuple[Any, ...]) -> Loc:
    """Drop the union tags Pydantic puts in error locations, so loc follows the file."""
    result: list[str | int] = []
    node = data
    for part in loc:
        is_tag = isinstance(node, dict) and isinstance(part, str) and part not in node
        if is_tag and (node.get("type") == part or part in BLOCK_TYPES):
            continue
        result.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(result)
