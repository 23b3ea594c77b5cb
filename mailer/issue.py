"""The issue file: its schema, strict validation, and errors that point at the line."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.header import decode_header
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from mailer.errors import IssueError, Problem
from mailer.markdown import check_markdown, check_url
from mailer.placeholders import check_placeholders
from mailer.yamlsource import UNQUOTED, Loc, YamlSource, dotted, load_yaml

_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]|%0[adAD]|\\[rn]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?", re.IGNORECASE)


def _one_line(value: str) -> str:
    """Refuse line breaks, also when hidden in RFC 2047 encoded words (CVE-2024-6923)."""
    decoded = value
    if "=?" in value:
        try:
            decoded = "".join(
                part.decode(charset or "ascii", "replace") if isinstance(part, bytes) else part
                for part, charset in decode_header(value)
            )
        except (ValueError, LookupError):
            raise ValueError("contains a malformed encoded word (=?...?=)") from None
    if _LINE_BREAKS.search(value) or _LINE_BREAKS.search(decoded):
        raise ValueError("must be one line: remove the line break")
    if _CONTROL.search(decoded):
        raise ValueError("contains a control character; retype it")
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _url(value: str) -> str:
    error, _warning = check_url(value)
    if error:
        raise ValueError(error)
    return value


def _diary_date(value: Any) -> date | datetime:
    """Accept YYYY-MM-DD or a local time YYYY-MM-DDTHH:MM (in the newsletter's time zone)."""
    if isinstance(value, datetime | date):
        return value
    text = str(value).strip()
    try:
        if "T" in text or " " in text:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is not None:
                raise ValueError
            return moment
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f'not a date ("{text}"); use YYYY-MM-DD, or YYYY-MM-DDTHH:MM for a time'
        ) from None


def _duration(value: str) -> str:
    parse_duration(value)
    return value


def parse_duration(text: str) -> timedelta:
    """Parse a duration like 6h, 90m, 1d or 2h30m."""
    match = _DURATION.fullmatch(text.strip().replace(" ", ""))
    if not match or not any(match.groups()):
        raise ValueError(f'not a duration ("{text}"); write e.g. 6h, 90m, 1d or 2h30m')
    days, hours, minutes = (int(part) if part else 0 for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


OneLine = Annotated[str, AfterValidator(_one_line)]
Url = Annotated[str, AfterValidator(_url)]
DiaryDate = Annotated[date | datetime, BeforeValidator(_diary_date)]
Markdown = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class TextBlock(_Strict):
    type: Literal["text"]
    heading: OneLine | None = None
    body: Markdown


class ArticleBlock(_Strict):
    type: Literal["article"]
    heading: OneLine
    body: Markdown


class CalloutBlock(_Strict):
    type: Literal["callout"]
    heading: OneLine | None = None
    body: Markdown


class DateItem(_Strict):
    title: OneLine
    date: DiaryDate
    end: DiaryDate | None = None
    url: Url | None = None

    @model_validator(mode="after")
    def _end_after_start(self) -> DateItem:
        if self.end is not None and _as_datetime(self.end, last=True) < _as_datetime(self.date):
            raise ValueError(f"end ({self.end}) is before date ({self.date}); swap them")
        return self


class DatesBlock(_Strict):
    type: Literal["dates"]
    heading: OneLine | None = None
    items: list[DateItem] = Field(min_length=1)


class Link(_Strict):
    text: OneLine
    url: Url


class NewsItem(_Strict):
    title: OneLine
    body: Markdown | None = None
    links: list[Link] = Field(default_factory=list)


class NewsBlock(_Strict):
    type: Literal["news"]
    heading: OneLine | None = None
    items: list[NewsItem] = Field(min_length=1)


class CourseItem(_Strict):
    title: OneLine
    date: DiaryDate | None = None
    body: Markdown | None = None
    url: Url
    button: OneLine = "Book a place"


class CoursesBlock(_Strict):
    type: Literal["courses"]
    heading: OneLine | None = None
    items: list[CourseItem] = Field(min_length=1)


class ImageBlock(_Strict):
    type: Literal["image"]
    src: Url
    alt: OneLine
    url: Url | None = None
    width: int | None = Field(default=None, ge=16, le=600)


class ButtonBlock(_Strict):
    type: Literal["button"]
    text: OneLine
    url: Url


class DividerBlock(_Strict):
    type: Literal["divider"]


Block = Annotated[
    TextBlock
    | ArticleBlock
    | CalloutBlock
    | DatesBlock
    | NewsBlock
    | CoursesBlock
    | ImageBlock
    | ButtonBlock
    | DividerBlock,
    Field(discriminator="type"),
]
BLOCK_TYPES = (
    "text",
    "article",
    "callout",
    "dates",
    "news",
    "courses",
    "image",
    "button",
    "divider",
)


class Issue(_Strict):
    """One issue of the newsletter."""

    subject: OneLine
    preheader: OneLine | None = None
    date: date
    number: int | None = Field(default=None, ge=0)
    send_at: AwareDatetime | None = None
    max_lateness: Annotated[str, AfterValidator(_duration)] | None = None
    layout: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")] | None = None
    blocks: list[Block] = Field(min_length=1)


@dataclass(frozen=True)
class LoadedIssue:
    """A valid issue with where it came from and what deserves a warning."""

    path: Path
    issue: Issue
    content_hash: str
    warnings: tuple[Problem, ...]
    source: YamlSource = field(repr=False, compare=False)  # where each value stands

    @property
    def stem(self) -> str:
        """Return the file name without .yaml: the issue's id in outputs and the ledger."""
        return self.path.stem


def _as_datetime(value: date | datetime, *, last: bool = False) -> datetime:
    """Return a moment; a plain date is its first moment, or its last when last is true."""
    if isinstance(value, datetime):
        return value
    start = datetime(value.year, value.month, value.day)
    return start + timedelta(days=1, microseconds=-1) if last else start


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
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return LoadedIssue(path, issue, digest, tuple(warnings), source)


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
    elif key == "body":
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
