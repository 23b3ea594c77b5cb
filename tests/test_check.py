"""mailer check: each check fires on a small crafted issue or layout; the sample is clean."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mailer.checks import check_email, check_issue, findings_json, has_errors
from mailer.checks.base import Finding
from mailer.checks.clients import CLIENTS, DATA_PATH, selector_features, support_data
from mailer.checks.colour import WHITE, contrast, parse_colour
from mailer.folder import load_settings
from mailer.issue import DatesBlock, LoadedIssue, load_issue
from mailer.render import SAMPLE_RECIPIENT, render_issue, sample_extras
from tests.conftest import REPO_DIR

SAMPLE = REPO_DIR / "issues" / "2023-10-20-ld-newsletter.yaml"
HEAD = 'subject: "Check test"\ndate: 2023-10-20\n'
TEXT = "  - type: text\n    body: |\n      Hello, see [the toolkit](https://example.org/toolkit).\n"


def check(folder: Path, blocks: str, head: str = HEAD) -> list[Finding]:
    """Write issues/issue.yaml from a head and blocks, and check it."""
    path = folder / "issues" / "issue.yaml"
    path.write_text(f"{head}blocks:\n{blocks}", encoding="utf-8")
    return check_issue(folder, path)


def only(findings: list[Finding], check_name: str) -> list[Finding]:
    """Return the findings of one check."""
    return [f for f in findings if f.check == check_name]


def edit_layout(folder: Path, old: str, new: str, name: str = "base.mjml.j2") -> Path:
    """Copy the default layout into the folder and replace old with new in one file."""
    target = folder / "layouts" / "default"
    if not target.exists():
        shutil.copytree(REPO_DIR / "layouts" / "default", target)
    path = target / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def add_to_footer(folder: Path, html: str) -> Path:
    """Add HTML after the layout's unsubscribe link."""
    return edit_layout(folder, ">Unsubscribe</a>", f">Unsubscribe</a> {html}")


def add_section(folder: Path, mjml: str) -> Path:
    """Add a one-column section with this MJML above the header."""
    section = f"<mj-section><mj-column>{mjml}</mj-column></mj-section>"
    return edit_layout(folder, "{% if brand.logo %}", f"{section}\n    {{% if brand.logo %}}")


def set_setting(folder: Path, old: str, new: str) -> None:
    """Change one line of the folder's mailer.toml."""
    path = folder / "mailer.toml"
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def test_the_sample_issue_has_no_errors_and_few_warnings(newsletter: Path) -> None:
    shutil.copy(SAMPLE, newsletter / "issues" / SAMPLE.name)
    findings = check_issue(newsletter, newsletter / "issues" / SAMPLE.name)
    assert not has_errors(findings), findings
    # "settings": the repository's mailer.toml is mailer init's example (issue 14)
    assert {f.check for f in findings} <= {"clients", "settings", "archive"}
    # The sample's archive is not published: the one archive finding says so (issue 13).
    (calendar,) = [f for f in findings if f.check == "archive"]
    assert "open Google Calendar" in calendar.message
    assert len(findings) <= 4


# Size


def test_an_issue_over_102_kb_is_an_error_naming_the_largest_block(newsletter: Path) -> None:
    paragraph = "Neglect is often cumulative, and small concerns add up over months. " * 10
    body = "".join(f"      {paragraph}\n\n" for _ in range(130))
    article = f"  - type: article\n    heading: Long\n    body: |\n{body}"
    findings = only(check(newsletter, TEXT + article), "size")
    assert [f.severity for f in findings] == ["error"]
    assert findings[0].where.startswith("issues/issue.yaml:7:5: blocks[1]")
    assert "Gmail clips" in findings[0].message
    assert findings[0].hint.startswith("the largest parts: blocks[1] (article)")


def test_size_counts_the_transfer_encoding(newsletter: Path) -> None:
    # 17,000 "é" are 34 KB of UTF-8 but 102 KB of quoted-printable (=C3=A9 each).
    findings = check(newsletter, f"  - type: text\n    body: |\n      {'é' * 17_000}\n")
    assert [f.severity for f in only(findings, "size")] == ["error"]


def test_an_issue_near_the_clipping_size_is_a_warning(newsletter: Path) -> None:
    findings = check(newsletter, f"  - type: text\n    body: |\n      {'é' * 12_500}\n")
    assert [f.severity for f in only(findings, "size")] == ["warning"]


# Links


def test_a_javascript_link_in_a_layout_names_the_layout_file_and_line(newsletter: Path) -> None:
    base = add_to_footer(newsletter, '<a href="javascript:alert(1)">Preferences</a>')
    line = next(n for n, t in enumerate(base.read_text().splitlines(), 1) if "javascript" in t)
    findings = only(check(newsletter, TEXT), "links")
    assert len(findings) == 1 and findings[0].severity == "error"
    assert findings[0].where.startswith(f"layouts/default/base.mjml.j2:{line}: <a href=")
    assert "javascript: links are not allowed" in findings[0].message


@pytest.mark.parametrize("href", ["#", ""])
def test_an_empty_or_hash_link_goes_nowhere(newsletter: Path, href: str) -> None:
    add_to_footer(newsletter, f'<a href="{href}">Top</a>')
    findings = only(check(newsletter, TEXT), "links")
    assert [f.message for f in findings] == [f'href="{href}" goes nowhere in an email']


def test_vague_link_text_points_at_the_issue_field(newsletter: Path) -> None:
    news = (
        "  - type: news\n    items:\n      - title: Audit\n        links:\n"
        "          - text: Click here\n            url: https://example.org/audit\n"
    )
    findings = only(check(newsletter, news), "links")
    assert [(f.severity, f.where.split(": ", 1)[1]) for f in findings] == [
        ("warning", "blocks[0].items[0].links[0].text")
    ]
    assert "says nothing out of context" in findings[0].message


def test_the_same_text_for_two_addresses_is_flagged(newsletter: Path) -> None:
    body = "[the guidance](https://example.org/a) and [the guidance](https://example.org/b)"
    findings = only(check(newsletter, f"  - type: text\n    body: |\n      {body}\n"), "links")
    assert len(findings) == 1 and "the guidance" in findings[0].message
    assert findings[0].where.endswith("blocks[0].body")


def test_an_invalid_mailto_address_and_an_http_link(newsletter: Path) -> None:
    body = "[write](mailto:team@example) or [read](http://example.org/page)"
    findings = only(check(newsletter, f"  - type: text\n    body: |\n      {body}\n"), "links")
    assert [f.severity for f in findings] == ["error", "warning"]
    assert 'mailto address "team@example" is not valid' in findings[0].message
    assert "not encrypted" in findings[1].message


# Dates

DATES = """  - type: dates
    items:
      - title: Audit returns due
        date: 2023-10-02
      - title: Anti-Bullying Week
        date: 2023-10-16
        end: 2023-11-10
      - title: Forum
        date: 2023-11-08T09:30
  - type: courses
    items:
      - title: GCP2
        date: 2023-10-07T09:30
        url: https://example.org/gcp2
"""


def test_past_dates_and_a_late_send_at_are_errors(newsletter: Path) -> None:
    head = HEAD + "send_at: 2023-11-08T10:00:00+00:00\n"
    findings = only(check(newsletter, DATES, head), "dates")
    places = [(f.severity, f.where.split(": ", 1)[1]) for f in findings]
    assert places == [
        ("error", "blocks[0].items[0].date"),  # over by the issue's date
        ("error", "blocks[0].items[2].date"),  # started before send_at
        ("error", "blocks[1].items[0].date"),  # a course already run
        ("warning", "send_at"),  # 19 days after the issue's date
    ]
    assert "is over by the issue's date (Friday 20 October 2023)" in findings[0].message
    assert "will have started by send_at (Wednesday 8 November 2023, 10:00" in findings[1].message


def test_an_end_before_its_date_is_an_error_even_past_validation(newsletter: Path) -> None:
    path = newsletter / "issues" / "issue.yaml"
    path.write_text(HEAD + "blocks:\n" + DATES, encoding="utf-8")
    loaded = load_issue(path)  # the schema refuses end < date: build one that skipped it
    block = loaded.issue.blocks[0]
    assert isinstance(block, DatesBlock)
    swapped = {"date": datetime(2023, 10, 25), "end": datetime(2023, 10, 21)}
    items = [block.items[0].model_copy(update=swapped)]
    issue = loaded.issue.model_copy(update={"blocks": [block.model_copy(update={"items": items})]})
    findings = only(run_check_email(newsletter, dataclasses.replace(loaded, issue=issue)), "dates")
    assert [(f.where, f.severity) for f in findings] == [("blocks[0].items[0].end", "error")]


def run_check_email(folder: Path, loaded: LoadedIssue, **changes: str) -> list[Finding]:
    """Render and personalise as compose does, change parts of the email, and check it."""
    settings = load_settings(folder)
    email = render_issue(folder, loaded, settings).personalise(
        SAMPLE_RECIPIENT, sample_extras(settings)
    )
    fields: dict[str, Any] = dict(changes)  # Personalised also has images, not a str
    return check_email(loaded=loaded, settings=settings, email=dataclasses.replace(email, **fields))


# Accessibility


def test_a_low_contrast_brand_colour_points_at_mailer_toml(newsletter: Path) -> None:
    set_setting(newsletter, 'primary_colour = "#1d4e89"', 'primary_colour = "#8fb3e0"')
    findings = only(check(newsletter, TEXT), "accessibility")
    assert findings and all(f.severity == "error" for f in findings)
    assert all(f.where.startswith("mailer.toml:") for f in findings)
    assert all(f.where.endswith(": brand.primary_colour") for f in findings)
    assert {"text #ffffff on #8fb3e0", "text #8fb3e0 on #ffffff"} == {
        f.message.split(" has")[0] for f in findings
    }
    suggested = parse_colour(findings[0].hint.split('"')[1])
    assert suggested is not None and contrast(suggested[0], WHITE) >= 4.5


def test_low_contrast_in_a_custom_layout_names_the_layout(newsletter: Path) -> None:
    edit_layout(newsletter, "20px; color: #4a5561; }", "20px; color: #aab4be; }")
    edit_layout(newsletter, ".small a { color: #4a5561; }", ".small a { color: #aab4be; }")
    findings = only(check(newsletter, TEXT), "accessibility")
    assert [f.message.split(" has")[0] for f in findings] == ["text #aab4be on #eef2f6"]
    assert findings[0].where.startswith("layouts/default/base.mjml.j2:")


def test_an_image_without_alt_in_a_layout_is_an_error(newsletter: Path) -> None:
    base = add_section(newsletter, '<mj-image src="https://example.org/logo.png" />')
    line = next(n for n, t in enumerate(base.read_text().splitlines(), 1) if "logo.png" in t)
    findings = only(check(newsletter, TEXT), "accessibility")
    assert [f.severity for f in findings] == ["error"]
    assert findings[0].where.startswith(f"layouts/default/base.mjml.j2:{line}: <img")
    assert "has no alt text" in findings[0].message


def test_a_file_name_as_alt_text_points_at_the_image_block(newsletter: Path) -> None:
    image = "  - type: image\n    src: https://example.org/img/team.jpg\n    alt: team.jpg\n"
    findings = only(check(newsletter, image), "accessibility")
    assert [f.where.split(": ", 1)[1] for f in findings] == ["blocks[0].alt"]
    assert "file name" in findings[0].message


def test_a_missing_language_and_a_skipped_heading_level(newsletter: Path) -> None:
    edit_layout(newsletter, '<mjml lang="{{ settings.language }}">', "<mjml>")
    body = "  - type: article\n    heading: Deep\n    body: |\n      #### Too deep\n\n      Text.\n"
    findings = only(check(newsletter, body), "accessibility")
    assert [f.severity for f in findings] == ["error", "warning"]
    assert 'lang="und"' in findings[0].message
    assert findings[1].where == "issues/issue.yaml:7: blocks[0].body"  # the heading's line
    assert "(h5) follows an h2" in findings[1].message


def test_a_link_that_blends_into_its_text_is_flagged(newsletter: Path) -> None:
    edit_layout(newsletter, "text-decoration: underline; }", "text-decoration: none; }")
    set_setting(newsletter, 'primary_colour = "#1d4e89"', 'primary_colour = "#2b3a48"')
    findings = only(check(newsletter, TEXT), "accessibility")
    assert [f.severity for f in findings] == ["warning", "warning"]
    assert findings[0].where.endswith(": blocks[0].body")
    assert 'link "the toolkit" is not underlined' in findings[0].message
    assert findings[1].where.startswith('<a href="https://northfield-safeguarding.example/news')
    assert 'link "Unsubscribe" is not underlined' in findings[1].message


# Email clients


def test_css_a_client_ignores_is_named_with_its_clients(newsletter: Path) -> None:
    add_section(newsletter, '<mj-text><div style="display:flex">Two columns</div></mj-text>')
    findings = only(check(newsletter, TEXT), "clients")
    flex = [f for f in findings if f.message.startswith("display:flex")]
    assert len(flex) == 1 and flex[0].severity == "warning"
    assert "Outlook for Windows" in flex[0].message and "Gmail (web)" not in flex[0].message
    assert flex[0].hint.endswith("https://www.caniemail.com/features/css-display-flex/")


def test_selectors_are_recognised() -> None:
    found = set(selector_features(".pad-phone div, a:hover"))
    assert {"css-selector-grouping", "css-selector-class", "css-selector-descendant"} <= found
    assert {"css-selector-type", "css-pseudo-class-hover"} <= found
    assert "css-selector-child" not in found


def test_the_caniemail_snapshot_is_pinned_and_attributed() -> None:
    raw = json.loads(DATA_PATH.read_text(encoding="utf-8"))
    assert raw["source"].startswith("caniemail@2.0.2 ")
    notice = (DATA_PATH.parent / "CANIEMAIL.md").read_text(encoding="utf-8")
    assert "version 2.0.2" in notice and "MIT License" in notice
    features = support_data()
    for client in CLIENTS:
        family, platform = client.split(".")
        assert platform in features["css-display-flex"]["stats"][family]


# Text part


def test_an_empty_text_part_and_leftover_markup_are_errors(newsletter: Path) -> None:
    path = newsletter / "issues" / "issue.yaml"
    path.write_text(HEAD + "blocks:\n" + TEXT, encoding="utf-8")
    loaded = load_issue(path)
    assert [f.message for f in only(run_check_email(newsletter, loaded, text=" \n"), "text")] == [
        "the text part is empty: some clients and many spam filters rely on it"
    ]
    leftover = "<p>Hello</p>\np { margin: 0; }\nFish &amp; chips\nhttps://example.org/toolkit\n"
    messages = [f.message for f in only(run_check_email(newsletter, loaded, text=leftover), "text")]
    assert [m.split(":")[0] for m in messages[:3]] == [
        "the text part contains HTML markup",
        "the text part contains an HTML entity",
        "the text part contains CSS",
    ]


def test_an_empty_html_part_is_reported_not_a_crash(newsletter: Path) -> None:
    path = newsletter / "issues" / "issue.yaml"
    path.write_text(HEAD + "blocks:\n" + TEXT, encoding="utf-8")
    findings = run_check_email(newsletter, load_issue(path), html="")
    assert has_errors(findings)
    assert "no lang attribute" in only(findings, "accessibility")[0].message


def test_a_layout_link_missing_from_the_text_part_is_a_warning(newsletter: Path) -> None:
    add_to_footer(newsletter, '<a href="https://example.org/donate">Donate</a>')
    findings = only(check(newsletter, TEXT), "text")
    assert [f.severity for f in findings] == ["warning"]
    assert '"https://example.org/donate" ("Donate") is missing' in findings[0].message


# The API


def test_findings_json_counts_and_lists_every_finding() -> None:
    findings = [
        Finding("error", "links", "blocks[0].url", "broken", "fix it"),
        Finding("warning", "clients", "the HTML", "flex", "fine"),
    ]
    report = json.loads(findings_json(findings))
    assert report["ok"] is False and (report["errors"], report["warnings"]) == (1, 1)
    assert report["findings"][0] == {
        "severity": "error",
        "check": "links",
        "where": "blocks[0].url",
        "message": "broken",
        "hint": "fix it",
    }
    assert has_errors(findings) and not has_errors(findings[1:])
