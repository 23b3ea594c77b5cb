"""Render an issue once: its email HTML (Jinja -> MJML -> premailer), its text part, a preview."""

from mailer.render.email import (
    Personalised,
    Rendered,
    render_issue,
    render_sample,
    sample_email,
    sample_extras,
)
from mailer.render.images import (
    InlineImage,
    image_files,
    with_data_uris,
    with_image_files,
)
from mailer.render.inline import MAX_HTML_BYTES
from mailer.render.layout import layout_files
from mailer.render.preview import preview_page, reload_script
from mailer.render.views import (
    SAMPLE_RECIPIENT,
    CalendarForm,
    calendar_form,
    format_date,
    format_when,
)

__all__ = [
    "MAX_HTML_BYTES",
    "SAMPLE_RECIPIENT",
    "CalendarForm",
    "InlineImage",
    "Personalised",
    "Rendered",
    "calendar_form",
    "format_date",
    "format_when",
    "image_files",
    "layout_files",
    "preview_page",
    "reload_script",
    "render_issue",
    "render_sample",
    "sample_email",
    "sample_extras",
    "with_data_uris",
    "with_image_files",
]
