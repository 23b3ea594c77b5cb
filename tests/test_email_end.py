"""The email cannot lose its end: nothing dropped by libxml2, a size cap, a visible unsubscribe."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from mailer.checks import check_issue
from mailer.compose import compose_issue
from mailer.errors import TemplateError
from mailer.issue import MAX_ISSUE_BYTES
from tests.conftest import REPO_DIR
from tests.sending import cli

ISSUE = """subject: News
date: 2023-10-20
blocks:
  - type: text
    heading: Hello
    body: The first words.
"""
PARAGRAPH = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20


def write_issue(folder: Path, text: str = ISSUE) -> Path:
    """Write issues/issue.yaml."""
    path = folder / "issues" / "issue.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def edit_layout(folder: Path, old: str, new: str) -> None:
    """Copy the default layout into the folder (once) and replace old with new in its base."""
    target = folder / "layouts" / "default"
    if not target.exists():
        shutil.copytree(REPO_DIR / "layouts" / "default", target)
    base = target / "base.mjml.j2"
    text = base.read_text(encoding="utf-8")
    assert old in text
    base.write_text(text.replace(old, new, 1), encoding="utf-8")


def huge_issue(folder: Path) -> Path:
    """Write an issue under the 1 MB cap whose body, repeated by a YAML alias, makes 5.4 MB."""
    body = "".join(f"      {PARAGRAPH}\n\n" for _ in range(900_000 // (len(PARAGRAPH) + 8)))
    text = ISSUE.replace("    body: The first words.\n", f"    body: &big |\n{body}")
    text += "  - type: text\n    body: *big\n" * 5
    assert len(text) < MAX_ISSUE_BYTES
    return write_issue(folder, text)


def test_an_issue_too_big_for_an_email_is_refused_by_compose_and_check(newsletter: Path) -> None:
    huge_issue(newsletter)
    message = (
        'error: issues/issue.yaml: the email\'s HTML is 5.4 MB (layout "default"), over the 5 MB '
        "limit, and Gmail clips it after 102 KB; shorten the issue, or link to long documents"
    )
    for command in (["compose", "issues/issue.yaml", "--no-open"], ["check", "issues/issue.yaml"]):
        code, _out, err = cli(*command)
        assert (code, err.splitlines()) == (1, [message]), command
    assert not (newsletter / "build").exists()


def test_a_text_over_libxml2s_10_mb_is_refused_before_it_is_cut(newsletter: Path) -> None:
    # libxml2 stops at a text node over 10 MB: the email lost its second half and its footer.
    edit_layout(
        newsletter,
        "{% for block",
        '<mj-raw><p>{{ "word " * 2_200_000 }}</p></mj-raw>\n{% for block',
    )
    with pytest.raises(TemplateError, match=r"^issues/issue.yaml: the email's HTML is 11\.\d MB"):
        compose_issue(newsletter, write_issue(newsletter), newsletter / "build")


def test_content_libxml2_drops_when_nested_too_deep_fails_compose(newsletter: Path) -> None:
    # Elements nested over 255 deep make libxml2 drop everything after them, silently.
    deep = "<div>" * 300 + "deep" + "</div>" * 300
    edit_layout(newsletter, "{% for block", f"<mj-raw>{deep}</mj-raw>\n{{% for block")
    with pytest.raises(TemplateError) as caught:
        compose_issue(newsletter, write_issue(newsletter), newsletter / "build")
    assert re.fullmatch(
        r"layouts/default: inlining the CSS lost \d+ of the email's \d+ characters of text "
        r"\(libxml2 drops what follows a text over 10 MB or elements nested over 255 deep\); "
        r"flatten the layout or shorten the issue",
        str(caught.value),
    ), caught.value


def test_nesting_that_libxml2_keeps_is_fine(newsletter: Path) -> None:
    deep = "<div>" * 200 + "deep" + "</div>" * 200
    edit_layout(newsletter, "{% for block", f"<mj-raw>{deep}</mj-raw>\n{{% for block")
    composed = compose_issue(newsletter, write_issue(newsletter), newsletter / "build")
    assert ">Unsubscribe</a>" in composed.html_path.read_text(encoding="utf-8")


UNSUBSCRIBE = '<a href="{{ unsubscribe_url }}">Unsubscribe</a>'


def unsubscribe_errors(folder: Path) -> list[str]:
    """Return what `mailer check` says about the unsubscribe link."""
    findings = check_issue(folder, write_issue(folder))
    return [f"{f.severity}: {f.message}" for f in findings if "unsubscribe link" in f.message]


def test_the_default_layout_shows_its_unsubscribe_link(newsletter: Path) -> None:
    assert unsubscribe_errors(newsletter) == []


def test_a_layout_without_an_unsubscribe_link_fails_check(newsletter: Path) -> None:
    edit_layout(newsletter, UNSUBSCRIBE, "")
    assert unsubscribe_errors(newsletter) == [
        "error: the email has no unsubscribe link: readers must be able to leave the list, and "
        "Gmail and Yahoo treat bulk mail without a visible one as spam"
    ]
    code, out, _err = cli("check", "issues/issue.yaml")
    assert code == 1
    assert (
        'error (links): the footer in the HTML (layout "default"): the email has no unsubscribe '
        "link" in out
    )
    assert 'keep <a href="{{ unsubscribe_url }}">Unsubscribe</a>, visible, in the layout' in out


@pytest.mark.parametrize(
    "hidden",
    [
        '<span style="display: none">' + UNSUBSCRIBE + "</span>",
        '<a href="{{ unsubscribe_url }}" style="font-size: 0px">Unsubscribe</a>',
        '<span style="font-size: 0">' + UNSUBSCRIBE + "</span>",
        '<a href="{{ unsubscribe_url }}"></a>',
        '<div style="max-height: 0; overflow: hidden">' + UNSUBSCRIBE + "</div>",
        "<span hidden>" + UNSUBSCRIBE + "</span>",
    ],
    ids=["display none", "0 px", "0 from a parent", "no text", "no height", "hidden attribute"],
)
def test_a_layout_that_hides_its_unsubscribe_link_fails_check(
    newsletter: Path, hidden: str
) -> None:
    edit_layout(newsletter, UNSUBSCRIBE, hidden)
    assert [e.split(":")[1] for e in unsubscribe_errors(newsletter)] == [
        " the email hides its unsubscribe link"
    ]


def test_a_mailto_unsubscribe_link_counts(newsletter: Path) -> None:
    settings = newsletter / "mailer.toml"
    text = settings.read_text(encoding="utf-8")
    settings.write_text(re.sub(r"(?m)^unsubscribe_url = .*\n", "", text), encoding="utf-8")
    assert unsubscribe_errors(newsletter) == []
    edit_layout(newsletter, UNSUBSCRIBE, '<a href="mailto:someone@example.org">Unsubscribe</a>')
    assert len(unsubscribe_errors(newsletter)) == 1  # a mailto, but not the one that works
