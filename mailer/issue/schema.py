"""The issue file's schema: the issue, its blocks and their items (Pydantic, strict).

A new block type is a model here, added to `Block` and `BLOCK_TYPES`, a template in
layouts/<name>/blocks/, and its text part in mailer/render/plaintext.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from mailer.issue.markdown import check_url
from mailer.values import (
    folder_path_problem,
    is_folder_path,
    parse_duration,
    written_line_problem,
)


def _one_line(value: str) -> str:
    problem = written_line_problem(value)
    if problem:
        raise ValueError(problem)
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _url(value: str) -> str:
    error, _warning = check_url(value)
    if error:
        raise ValueError(error)
    return value


def _image_src(value: str) -> str:
    """Accept an https:// (or http://) address, or a file in the newsletter folder."""
    if is_folder_path(value):
        problem = folder_path_problem(value)
        if problem:
            raise ValueError(problem)
        return value.strip()
    return _url(value)


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


def as_moment(value: date | datetime, *, last: bool = False) -> datetime:
    """Return a moment; a plain date is its first moment, or its last when last is true."""
    if isinstance(value, datetime):
        return value
    start = datetime(value.year, value.month, value.day)
    return start + timedelta(days=1, microseconds=-1) if last else start


OneLine = Annotated[str, AfterValidator(_one_line)]
Url = Annotated[str, AfterValidator(_url)]
ImageSrc = Annotated[str, AfterValidator(_image_src)]
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
        if self.end is not None and as_moment(self.end, last=True) < as_moment(self.date):
            raise ValueError(f"end ({self.end}) is before date ({self.date}); swap them")
        return self


class DatesBlock(_Strict):
    type: Literal["dates"]
    heading: OneLine | None = None
    intro: Markdown | None = None  # a paragraph or two under the heading
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
    intro: Markdown | None = None  # a paragraph or two under the heading
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
    intro: Markdown | None = None  # a paragraph or two under the heading
    items: list[CourseItem] = Field(min_length=1)


class ImageBlock(_Strict):
    type: Literal["image"]
    src: ImageSrc  # https://... or a file in the newsletter folder: images/team.jpg
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

    def dated_items(self) -> list[DatedItem]:
        """Return the items of dates and courses blocks that have a date, in order."""
        found = []
        for block_index, block in enumerate(self.blocks):
            if isinstance(block, DatesBlock | CoursesBlock):
                items: list[DateItem | CourseItem] = list(block.items)
                for item_index, item in enumerate(items):
                    if item.date is not None:
                        found.append(DatedItem(block_index, item_index, item))
        return found


@dataclass(frozen=True)
class DatedItem:
    """An item with a date, and where it stands: blocks[block_index].items[item_index]."""

    block_index: int
    item_index: int
    item: DateItem | CourseItem

    @property
    def loc(self) -> tuple[str | int, ...]:
        """Return where the item is in the issue file."""
        return ("blocks", self.block_index, "items", self.item_index)

    @property
    def start(self) -> date | datetime:
        """Return the item's date (every dated item has one)."""
        assert self.item.date is not None
        return self.item.date

    @property
    def end(self) -> date | datetime | None:
        """Return the end of a diary date; a course has none."""
        return self.item.end if isinstance(self.item, DateItem) else None
