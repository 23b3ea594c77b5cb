"""Render an issue once: sandboxed Jinja -> MJML (mjml-python) -> HTML -> premailer inlines CSS.

Nothing is fetched and nothing outside the layout folder is read: templates come through
LayoutLoader (no symlinks), MJML has no include loader, premailer and cssutils fetch nothing
(inline.py).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateNotFound, TemplateSyntaxError
from jinja2 import TemplateError as JinjaError
from jinja2.sandbox import SandboxedEnvironment

from mailer.addresses import ascii_domain
from mailer.config import Settings
from mailer.errors import TemplateError
from mailer.folder import BASE_TEMPLATE, Newsletter
from mailer.issue import LoadedIssue, Personalisable, PlaceholderTable
from mailer.render.images import InlineImage, embed_images
from mailer.render.inline import inline_css
from mailer.render.layout import LayoutLoader
from mailer.render.palette import dark_palette
from mailer.render.plaintext import render_text
from mailer.render.views import SAMPLE_RECIPIENT, format_date, issue_views
from mailer.render.web import without_greetings

_NOT_FOR_LAYOUTS = {"smtp", "limits", "schedule", "unsubscribe_secret"}
# Filled per recipient: the unsubscribe link carries a personal token (RFC 8058).
UNSUBSCRIBE = "{{ mailer.unsubscribe_url }}"


@dataclass(frozen=True)
class Personalised:
    """One recipient's subject, HTML and text."""

    subject: str
    preheader: str
    html: str
    text: str
    images: tuple[InlineImage, ...] = ()  # the HTML shows them as cid: (see render.images)


@dataclass(frozen=True)
class Rendered:
    """An issue rendered once, with its placeholders left to fill per recipient."""

    subject: Personalisable
    preheader: Personalisable
    html: Personalisable
    text: Personalisable
    table: PlaceholderTable
    images: tuple[InlineImage, ...] = ()  # files sent inside each message (cid: in the HTML)

    def personalise(self, fields: Mapping[str, str], extras: Mapping[str, str]) -> Personalised:
        """Fill the placeholders for one recipient: cheap string joins, no rendering."""
        values = self.table.evaluate(fields, extras)
        return Personalised(
            subject=self.subject.fill(values, escape=False),
            preheader=self.preheader.fill(values, escape=False),
            html=self.html.fill(values, escape=True),
            text=self.text.fill(values, escape=False),
            images=self.images,
        )


def render_issue(
    folder: Path, loaded: LoadedIssue, settings: Settings, *, for_archive: bool = False
) -> Rendered:
    """Render the issue's HTML and text once, keeping recipient placeholders as tokens.

    for_archive renders the web archive's page: the layout is told (`archive`) to leave out
    what only makes sense in an inbox, and greeting lines ("Good morning {{ ... }},") go.
    """
    if for_archive:
        loaded = without_greetings(loaded)
    issue = loaded.issue
    newsletter = Newsletter(folder, settings)
    table = PlaceholderTable()
    blocks = issue_views(loaded, table, newsletter)
    brand = settings.brand.model_dump(mode="json")
    images = embed_images(folder, loaded, blocks, brand, ascii_domain(settings.sender_domain))
    unsubscribe = table.tokenise(UNSUBSCRIBE)
    subject = table.tokenise(issue.subject)
    preheader = table.tokenise(issue.preheader or "")
    browser_url = newsletter.view_url(loaded.stem)
    subtitle = format_date(issue.date) + (f" · Issue {issue.number}" if issue.number else "")
    directory = newsletter.layout_dir(issue.layout or settings.layout)
    context = {
        # Plain data, and none of the SMTP settings or secrets: a layout is someone's design,
        # and a sandbox still lets it call public methods such as get_secret_value().
        "settings": settings.model_dump(mode="json", exclude=_NOT_FOR_LAYOUTS),
        "brand": brand,
        "issue": issue,
        "subject": subject,
        "preheader": preheader,
        "issue_date": format_date(issue.date),
        "subtitle": subtitle,
        "blocks": blocks,
        "unsubscribe_url": unsubscribe,
        "view_in_browser_url": browser_url,
        "archive": for_archive,
        "dark": dark_palette(settings.brand.model_dump(mode="json")),
    }
    mjml = _render_template(directory, context)
    html = inline_css(_mjml_to_html(mjml, directory), directory, loaded.source.path)
    text = render_text(
        title=settings.name,
        subtitle=subtitle,
        blocks=blocks,
        footer=[
            settings.organisation,
            settings.postal_address,
            f"Unsubscribe: {unsubscribe}",
        ],
        view_url=browser_url,
    )
    return Rendered(
        subject=Personalisable.split(subject),
        preheader=Personalisable.split(preheader),
        html=Personalisable.split(html),
        text=Personalisable.split(text),
        table=table,
        images=images,
    )


def sample_extras(settings: Settings) -> dict[str, str]:
    """Return mailer's own values for a sample: the unsubscribe link without a token."""
    if settings.unsubscribe_url:
        return {"unsubscribe_url": settings.unsubscribe_url}
    return {"unsubscribe_url": f"mailto:{settings.unsubscribe_mailto}?subject=unsubscribe"}


def sample_email(rendered: Rendered, settings: Settings) -> Personalised:
    """Return the email as a recipient with no personal data gets it."""
    return rendered.personalise(SAMPLE_RECIPIENT, sample_extras(settings))


def render_sample(
    folder: Path, loaded: LoadedIssue, settings: Settings, *, for_archive: bool = False
) -> Personalised:
    """Render the issue and fill it for a recipient with no personal data."""
    rendered = render_issue(folder, loaded, settings, for_archive=for_archive)
    return sample_email(rendered, settings)


def _environment(directory: Path) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=LayoutLoader(directory),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render_template(directory: Path, context: dict[str, Any]) -> str:
    try:
        return _environment(directory).get_template(BASE_TEMPLATE).render(context)
    except TemplateSyntaxError as err:
        where = f"{err.filename or directory / BASE_TEMPLATE}:{err.lineno}"
        raise TemplateError(f"{where}: {err.message}; fix the template") from err
    except TemplateNotFound as err:
        raise TemplateError(f"{directory}: template {err.name} not found") from err
    except (JinjaError, TypeError, AttributeError) as err:
        raise TemplateError(f"{_template_frame(err, directory)}: {err}; fix the template") from err


def _template_frame(err: BaseException, directory: Path) -> str:
    """Return file:line of the innermost template frame of err's traceback."""
    where = str(directory / BASE_TEMPLATE)
    tb = err.__traceback__ or sys.exc_info()[2]
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            where = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _mjml_to_html(mjml: str, directory: Path) -> str:
    from mjml import mjml2html  # imported late: `mailer --help` stays fast

    try:
        # fonts={} keeps MJML from adding web-font links: nothing is fetched when shown.
        return mjml2html(mjml, disable_comments=True, fonts={})
    except Exception as err:  # the Rust binding raises plain exceptions with the parser's text
        raise TemplateError(f"{directory / BASE_TEMPLATE}: MJML error: {err}") from err
