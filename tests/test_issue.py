"""Issue validation: every kind of mistake is reported, all at once, at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.errors import IssueError
from mailer.issue import load_issue
from tests.conftest import REPO_DIR

SAMPLE = REPO_DIR / "issues" / "2023-10-20-ld-newsletter.yaml"
HEAD = """subject: News
date: 2023-10-20
blocks:
"""


def problems_of(text: str, tmp_path: Path) -> list[str]:
    """Return the problems an issue file with this text gets, as printed."""
    path = tmp_path / "issue.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(IssueError) as caught:
        load_issue(path, "issues/x.yaml")
    return [str(problem) for problem in caught.value.problems] or [str(caught.value)]


def test_the_sample_issue_is_valid_and_uses_every_block_type() -> None:
    loaded = load_issue(SAMPLE)
    kinds = {block.type for block in loaded.issue.blocks}
    assert kinds == {
        "text",
        "article",
        "callout",
        "dates",
        "news",
        "courses",
        "image",
        "button",
        "divider",
    }
    assert loaded.warnings == ()
    assert loaded.issue.send_at is not None and loaded.issue.send_at.utcoffset() is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            HEAD + "  - type: text\n    body: Hi\n    colour: red\n",
            "issues/x.yaml:6:5: blocks[0].colour: unknown key",
        ),
        (
            "subject: A\nsubject: B\ndate: 2023-10-20\nblocks: [{type: divider}]\n",
            'issues/x.yaml:2:1: subject: duplicate key "subject" (first on line 1)',
        ),
        ("subject: A\nblocks: [{type: divider}]\n", "issues/x.yaml:1:1: date: required; add it"),
        (
            "subject: A\ndate: next Tuesday\nblocks: [{type: divider}]\n",
            'issues/x.yaml:2:7: date: not a date ("next Tuesday"); use YYYY-MM-DD',
        ),
        (
            HEAD + "  - type: dates\n    items:\n      - title: Forum\n        date: 2023-13-40\n",
            'issues/x.yaml:7:15: blocks[0].items[0].date: not a date ("2023-13-40")',
        ),
        (
            "send_at: 2023-10-20T09:00:00\n" + HEAD + "  - type: divider\n",
            "issues/x.yaml:1:10: send_at: needs a UTC offset, e.g. 2023-10-20T09:00:00+01:00",
        ),
        (
            HEAD + "  - type: button\n    text: Go\n    url: javascript:alert(1)\n",
            'issues/x.yaml:6:10: blocks[0].url: "javascript:alert(1)": javascript: links are not',
        ),
        (
            HEAD + "  - type: button\n    text: Go\n    url: JaVaScRiPt:alert(1)\n",
            'blocks[0].url: "JaVaScRiPt:alert(1)": javascript: links are not allowed',
        ),
        (
            HEAD + "  - type: button\n    text: Go\n    url: data:text/html,x\n",
            'issues/x.yaml:6:10: blocks[0].url: "data:text/html,x": data: links are not allowed',
        ),
        (
            HEAD
            + "  - type: text\n    body: |\n      Fine.\n\n      [Click](javascript:alert(1))\n",
            'issues/x.yaml:8: blocks[0].body: "javascript:alert(1)": javascript: links',
        ),
        (
            HEAD + "  - type: text\n    body: |\n      Hello\n      <script>alert(1)</script>\n",
            'issues/x.yaml:7: blocks[0].body: raw HTML ("<script>alert(1)</script>")',
        ),
        (
            HEAD + "  - type: text\n    body: |\n      Hello\n      there <b>you</b>\n",
            'issues/x.yaml:7: blocks[0].body: raw HTML ("<b>")',
        ),
        (
            'subject: "Hi\\nBcc: all@example.org"\ndate: 2023-10-20\nblocks: [{type: divider}]\n',
            "issues/x.yaml:1:10: subject: must be one line",
        ),
        (
            'subject: "=?utf-8?q?Hi=0ABcc:_all@example.org?="\ndate: 2023-10-20\n'
            "blocks: [{type: divider}]\n",
            "issues/x.yaml:1:10: subject: must be one line",
        ),
        (
            "subject: Hi%0d%0aBcc\ndate: 2023-10-20\nblocks: [{type: divider}]\n",
            "issues/x.yaml:1:10: subject: must be one line",
        ),
        (
            HEAD + "  - type: image\n    src: https://example.org/a.png\n",
            "issues/x.yaml:4:5: blocks[0].alt: required; add it",
        ),
        (
            HEAD + "  - type: image\n    src: https://example.org/a.png\n    alt: ''\n",
            "issues/x.yaml:6:10: blocks[0].alt: must not be empty",
        ),
        (
            "layout: ../../etc\n" + HEAD + "  - type: divider\n",
            "issues/x.yaml:1:9: layout: a layout is a folder name in layouts/",
        ),
        (HEAD + "  - type: poll\n", 'issues/x.yaml:4:11: blocks[0]: unknown block type "poll"'),
        (
            HEAD + "  - type: text\n    body: Hi {{ config.items() }}\n",
            'issues/x.yaml:5:11: blocks[0].body: placeholder "{{ config.items() }}" may only use',
        ),
        (
            HEAD + "  - type: text\n    body: Hi {% for x in y %}\n",
            "only {{ recipient.<column> }} placeholders are allowed",
        ),
        (
            "subject: A\ndate: 2023-10-20\nblocks: []\n",
            "issues/x.yaml:3:9: blocks: needs at least one entry",
        ),
        (
            HEAD + "  - type: dates\n    items:\n      - title: X\n        date: 2023-11-02\n"
            "        end: 2023-11-01\n",
            "issues/x.yaml:6:9: blocks[0].items[0]: end (2023-11-01) is before date (2023-11-02)",
        ),
    ],
    ids=[
        "unknown key",
        "duplicate key",
        "missing field",
        "bad date",
        "impossible date",
        "send_at without offset",
        "javascript url",
        "mixed-case javascript url",
        "data url",
        "javascript in markdown",
        "raw html block",
        "raw inline html",
        "newline in subject",
        "encoded newline in subject",
        "percent-encoded newline",
        "image without alt",
        "empty alt",
        "layout path",
        "unknown block type",
        "placeholder reaching out",
        "template tag",
        "no blocks",
        "end before date",
    ],
)
def test_each_mistake_is_named_at_its_line(text: str, expected: str, tmp_path: Path) -> None:
    found = problems_of(text, tmp_path)
    assert any(expected in problem for problem in found), found


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        "subject: A\nsubject: B\ndate: soon\nsend_at: 2023-10-20T09:00\nblocks:\n"
        "  - type: image\n    src: ftp://example.org/a.png\n  - type: text\n    bdy: x\n"
    )
    found = problems_of(text, tmp_path)
    lines = [problem.split(":")[1] for problem in found]
    assert lines == ["2", "3", "4", "6", "7", "8", "9"], found


def test_a_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    found = problems_of(
        "subject: A\ndate: 2023-10-20\nblocks:\n  - type: text\n   body: [\n", tmp_path
    )
    assert found[0].startswith("issues/x.yaml:5:"), found


def test_an_unquoted_placeholder_says_to_quote_it(tmp_path: Path) -> None:
    found = problems_of(
        HEAD + "  - type: text\n    heading: {{ recipient.name }}\n    body: x\n", tmp_path
    )
    assert found == [
        "issues/x.yaml:5:15: blocks[0].heading: a value that starts with {{ must be in quotes: "
        '"{{ recipient.first_name }}"'
    ]


def test_a_tab_says_to_indent_with_spaces(tmp_path: Path) -> None:
    found = problems_of(HEAD + "\t- type: divider\n", tmp_path)
    assert found[0].startswith("issues/x.yaml:4:1:") and "indent with spaces" in found[0]


def test_a_placeholder_at_the_start_of_a_link_is_refused(tmp_path: Path) -> None:
    found = problems_of(
        HEAD + '  - type: button\n    text: Go\n    url: "{{ recipient.link }}"\n', tmp_path
    )
    assert any("cannot start with a placeholder" in problem for problem in found), found


def test_a_timed_item_may_end_later_the_same_day_given_as_a_date(tmp_path: Path) -> None:
    path = tmp_path / "issue.yaml"
    path.write_text(
        HEAD + "  - type: dates\n    items:\n      - title: Forum\n"
        "        date: 2023-10-20T08:00\n        end: 2023-10-20\n"
    )
    assert load_issue(path).issue.blocks[0].type == "dates"


def test_an_unreadable_address_is_an_error_not_a_crash(tmp_path: Path) -> None:
    found = problems_of(
        HEAD + '  - type: button\n    text: Go\n    url: "https://[::1"\n', tmp_path
    )
    assert any("is not a valid address" in problem for problem in found), found


def test_plain_http_links_are_a_warning_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "issue.yaml"
    path.write_text(HEAD + "  - type: button\n    text: Go\n    url: http://example.org\n")
    loaded = load_issue(path, "issues/x.yaml")
    assert [str(w) for w in loaded.warnings] == [
        'issues/x.yaml:6:10: blocks[0].url: "http://example.org" is not encrypted; '
        "use https: if the site supports it"
    ]


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "issue.yaml"
    path.write_bytes(b"subject: caf\xe9\n")
    with pytest.raises(IssueError, match=r"issue.yaml: not UTF-8 text"):
        load_issue(path)
