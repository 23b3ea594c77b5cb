"""Text pasted from Word: its bullets and numbering become lists, bare addresses links.

tests/fixtures/word-paste.txt is a draft as Word puts it on the clipboard as plain text: one
line per paragraph (CRLF), a glyph and a tab per bullet (`•`, then `o`, then `§` for deeper
levels; U+F0B7 when Outlook's Symbol-font bullet loses its font), `1.`/`a.` and a tab per
numbered item, curly quotes, a non-breaking space and bare addresses.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lxml import html as lxml_html
from markdown_it import MarkdownIt

from mailer.folder import load_settings
from mailer.issue import load_issue, markdown_to_html, markdown_to_text
from mailer.render import render_sample
from tests.conftest import REPO_DIR

PASTED = (REPO_DIR / "tests" / "fixtures" / "word-paste.txt").read_text(encoding="utf-8")
SAMPLE = REPO_DIR / "issues" / "2023-10-20-ld-newsletter.yaml"


def issue_with_body(folder: Path, body: str) -> Path:
    """Write an issue whose one text block holds body, indented as an editor pastes it."""
    indented = "".join(f"      {line}\n" if line else "\n" for line in body.splitlines())
    path = folder / "issues" / "pasted.yaml"
    path.write_text(
        f'subject: "Pasted"\ndate: 2023-10-20\nblocks:\n  - type: text\n    body: |\n{indented}',
        encoding="utf-8",
    )
    return path


def structure(html: str) -> list[str]:
    """Return each list item as its depth in lists and its own text: '2 ol Two hours'."""
    root: Any = lxml_html.fromstring(f"<div>{html}</div>")
    found = []
    for item in root.iter("li"):
        depth = sum(1 for a in item.iterancestors() if a.tag in ("ul", "ol"))
        own = (item.text or "").strip() or "".join(item.itertext()).split("\n")[0].strip()
        found.append(f"{depth} {item.getparent().tag} {own}")
    return found


def test_words_bullets_and_numbers_become_nested_lists() -> None:
    html = markdown_to_html(PASTED.replace("\r\n", "\n"))
    assert structure(html) == [
        "1 ul Safeguarding level 1 – online",
        "2 ul Two hours, on Teams",
        "2 ul Book at",
        "1 ul Safeguarding level 2",
        "2 ul In person only",
        "1 ul Professional curiosity",
        "1 ol Talk to the child",
        "1 ol Look at the history",
        "2 ol chronologies",
        "2 ol case notes",
        "1 ol Refer the same day",
        "1 ul A bullet from Outlook, in the Symbol font",
    ]
    # The paragraphs around the lists stay paragraphs of their own, not run into an item.
    page: Any = lxml_html.fromstring(f"<div>{html}</div>")
    paragraphs = [p.text_content() for p in page.iter("p")]
    assert "What to do if you are worried:" in paragraphs
    # Word pastes a paragraph a line: each stays a paragraph, not run into the next.
    assert paragraphs[:2] == ["Dear colleagues,", paragraphs[1]]
    assert paragraphs[1].startswith("This term’s courses")
    assert "Kind regards," in paragraphs
    assert not any("•" in p or "\t" in p for p in paragraphs)


def test_bare_addresses_become_links_and_www_gets_a_warning(newsletter: Path) -> None:
    html = markdown_to_html(PASTED)
    assert '<a href="https://learning.example.org/courses/level-1">' in html
    assert '<a href="mailto:learning@example.org">learning@example.org</a>' in html
    assert 'href="http://www' not in html  # www. alone is not guessed to be http://
    loaded = load_issue(issue_with_body(newsletter, PASTED.replace("\r\n", "\n")))
    warnings = [str(w) for w in loaded.warnings]
    line = 6 + PASTED.splitlines().index(next(x for x in PASTED.splitlines() if "www." in x))
    assert any(
        f"pasted.yaml:{line}:" in w and "write https://www.example.org/faq" in w for w in warnings
    ), warnings


def test_curly_quotes_dashes_and_non_breaking_spaces_are_kept() -> None:
    html = markdown_to_html(PASTED)
    assert "This term’s courses are below. We’ve added “Professional curiosity”\u00a0by" in html
    text = markdown_to_text(PASTED)
    assert "“Professional curiosity”\u00a0by" in text.replace("\n", " ")
    assert "* Safeguarding level 1 – online" in text
    assert re.search(r"^  \* Two hours, on Teams$", text, re.MULTILINE)
    assert "1. Talk to the child" in text and "  1. chronologies" in text


def test_the_pasted_draft_composes_with_every_list_and_link(newsletter: Path) -> None:
    path = issue_with_body(newsletter, PASTED.replace("\r\n", "\n"))
    email = render_sample(newsletter, load_issue(path), load_settings(newsletter))
    root: Any = lxml_html.fromstring(email.html)
    assert len(root.xpath("//ul/li")) == 7 and len(root.xpath("//ol/li")) == 5
    hrefs = [a.get("href") for a in root.iter("a")]
    assert "https://learning.example.org/courses/level-1" in hrefs
    assert "* Talk to the child" not in email.text and "1. Talk to the child" in email.text


def test_markdown_written_by_hand_renders_exactly_as_before() -> None:
    plain = MarkdownIt("commonmark", {"html": False})
    bodies = []
    for block in load_issue(SAMPLE).issue.blocks:
        data = block.model_dump()
        bodies += [data.get("body")] + [item.get("body") for item in data.get("items", [])]
    assert len([b for b in bodies if b]) > 10
    for body in filter(None, bodies):
        assert markdown_to_html(body) == plain.render(body)


def test_long_lines_are_words_paragraphs_wrapped_lines_are_one_paragraph() -> None:
    word = "A paragraph as Word pastes it, on one line however long it is. " * 3
    html = markdown_to_html(f"{word}\n{word}\n")
    assert html.count("<p>") == 2
    wrapped = "A paragraph wrapped by hand\nover two lines.\n"
    assert markdown_to_html(wrapped).count("<p>") == 1


def test_a_paragraph_after_a_list_does_not_run_into_its_last_item() -> None:
    html = markdown_to_html("Steps:\n1) Talk\n2) Look\nThen write it down.\n")
    assert "<li>Look</li>" in html and "<p>Then write it down.</p>" in html
    # Numbering that does not start at 1 is a list too, not part of the paragraph above.
    html = markdown_to_html("Continued:\n3.\tRefer\n4.\tRecord\n")
    assert '<ol start="3">' in html
    # A level-2 glyph outside a list, or a letter and a space (not Word's tab), is prose.
    assert "<li>" not in markdown_to_html("o\tnot a bullet\na. nor this\n")
