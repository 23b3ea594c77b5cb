"""`mailer init`: a new newsletter folder, from a few answers (registered in app.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mailer.cli.output import fail, run, say, warn


def _interactive() -> bool:
    """Say whether someone is at a terminal to answer questions (never in cron or CI)."""
    import sys

    return sys.stdin.isatty() and sys.stdout.isatty()


_QUESTIONS = (
    ("name", "The newsletter's name (the subject line and the top of the email)"),
    ("organisation", "Your organisation (the footer)"),
    ("postal_address", "Its postal address (the footer; the law asks for one)"),
    ("from_address", "Send from which address (replies come back to it)"),
    (
        "website",
        "The newsletter's web address, for unsubscribing and old issues (https://...);\n"
        "  press Enter if there is none: readers then unsubscribe by mail",
    ),
    ("provider", "Which mail service sends it: office365, google, ses, postfix or other"),
)


def init(
    ctx: typer.Context,
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Where to create the folder.")
    ] = Path("."),
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider",
            metavar="office365|google|ses|postfix|other",
            help="Write this mail service's server, security and sending limits into [smtp] "
            "and [limits].",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="The newsletter's name.")] = None,
    organisation: Annotated[
        str | None, typer.Option("--organisation", help="Your organisation (the footer).")
    ] = None,
    postal_address: Annotated[
        str | None, typer.Option("--address", help="Its postal address (the footer).")
    ] = None,
    from_address: Annotated[
        str | None, typer.Option("--from", metavar="ADDRESS", help="The From address.")
    ] = None,
    website: Annotated[
        str | None,
        typer.Option(
            "--website",
            metavar="URL",
            help="The newsletter's web address (https://...): unsubscribe page and archive.",
        ),
    ] = None,
    no_website: Annotated[
        bool,
        typer.Option("--no-website", help="No website: readers unsubscribe by mail."),
    ] = False,
) -> None:
    """Create a newsletter folder: settings, an example issue, the default layout and a list.

    At a terminal it asks for the newsletter's name, organisation, postal address, From
    address, website and mail service; each has an option, for scripts (no questions
    without a terminal; what is not given keeps the example, which `mailer check` points
    out). Example: mailer init staff-news --provider office365 && cd staff-news
    """
    from mailer.scaffold import Answers, answer_problem, create_newsletter

    if website is not None and no_website:
        fail("give --website or --no-website, not both")
        raise typer.Exit(2)
    given: dict[str, str | None] = {
        "name": name,
        "organisation": organisation,
        "postal_address": postal_address,
        "from_address": from_address,
        "website": "" if no_website else website,
        "provider": provider,
    }
    for field, value in given.items():
        problem = None if value is None else answer_problem(field, value)
        if problem:
            flag = {"postal_address": "address", "from_address": "from"}.get(field, field)
            fail(f"--{flag.replace('_', '-')}: {problem}")
            raise typer.Exit(2)
    if _interactive():
        say(f"Setting up a newsletter in {directory} (Enter keeps what is in [brackets]).")
        for field, question in _QUESTIONS:
            if given[field] is None:
                given[field] = _ask(question, field)
    answers = Answers(**given)
    written = run(lambda: create_newsletter(directory, answers))
    for path in written:
        say(f"created {path}")
    say(
        f"copied the default layout to {directory / 'layouts' / 'default'}: change the footer's "
        "sentence and anything else there (layouts/default/base.mjml.j2)"
    )
    say(
        f"next: check {directory / 'mailer.toml'}, then run: mailer --dir {directory} compose "
        f"{written[0].relative_to(directory) if written else 'issues/<issue>.yaml'}",
    )


def _ask(question: str, field: str) -> str | None:
    """Ask one question until the answer is usable; None keeps the example."""
    from mailer.scaffold import answer_problem

    while True:
        default = "other" if field == "provider" else ""
        answer = str(typer.prompt(question, default=default, show_default=bool(default))).strip()
        if not answer and field != "website":
            return None if field != "provider" else "other"
        problem = answer_problem(field, answer)
        if problem is None:
            return answer
        warn(problem)
