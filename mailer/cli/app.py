"""The command line: the `mailer` app, its global options, and every command registered.

Each command lives with its stage (compose.py, send.py, schedule.py) and only parses, calls
one core function and reports; output.py prints and turns errors into exit codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from mailer import __version__
from mailer.cli.compose import archive, check, compose, validate
from mailer.cli.inbox import inbox, serve_unsubscribe
from mailer.cli.init import init
from mailer.cli.ledger import ledger_app
from mailer.cli.output import Options, start_console
from mailer.cli.schedule import schedule, send_due
from mailer.cli.send import send, status, unsubscribe

# The options of `mailer` itself, which people also write after the command (`mailer compose
# x.yaml --dir ~/news`): no command has options of these names, so they are moved in front.
_GLOBAL_FLAGS = {"-v", "--verbose", "-q", "--quiet"}
_GLOBAL_WITH_VALUE = {"--dir"}


def global_options_first(args: list[str]) -> list[str]:
    """Return args with mailer's own options moved before the command (up to a `--`)."""
    before: list[str] = []
    index = 0
    while index < len(args) and args[index].startswith("-") and args[index] != "--":
        takes_value = args[index] in _GLOBAL_WITH_VALUE
        before += args[index : index + 1 + takes_value]
        index += 1 + takes_value
    moved: list[str] = []
    rest: list[str] = []
    tail = args[index:]
    position = 0
    while position < len(tail):
        arg = tail[position]
        if arg == "--":
            rest += tail[position:]
            break
        if arg in _GLOBAL_FLAGS or (arg.split("=", 1)[0] in _GLOBAL_WITH_VALUE and "=" in arg):
            moved.append(arg)
        elif arg in _GLOBAL_WITH_VALUE and position + 1 < len(tail):
            moved += tail[position : position + 2]
            position += 1
        else:
            rest.append(arg)
        position += 1
    return before + moved + rest


class Group(TyperGroup):
    """The `mailer` group: global options are accepted after the command too."""

    # Any: Typer vendors click privately, so its types are not ours to name.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return list(super().parse_args(ctx, global_options_first(list(args))))


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"mailer {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="mailer",
    cls=Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Command(TyperCommand):
    """A command whose help names each argument by its metavar, not by its Python type."""

    # Any: Typer vendors click privately, so its types are not ours to name.
    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((param.metavar or str(param.name).upper(), record[1]))
            else:
                options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


@app.callback()
def main(
    ctx: typer.Context,
    folder: Annotated[
        Path,
        typer.Option(
            "--dir", metavar="DIR", help="The newsletter folder (default: the current one)."
        ),
    ] = Path("."),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Say more.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Say only what went wrong.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Say which version this is."
        ),
    ] = False,
) -> None:
    """Compose an email newsletter from an issue file and send it, safely.

    Example: mailer compose issues/2023-10-20-ld-newsletter.yaml

    --dir, -v and -q may come before or after the command.
    """
    ctx.obj = Options(folder=folder, verbose=verbose, quiet=quiet)
    start_console(ctx, verbose=verbose, quiet=quiet)


# The order here is the order of `mailer --help`.
for command in (init, validate, compose, check, archive, send, status, unsubscribe):
    app.command(cls=Command)(command)
app.command("send-due", cls=Command)(send_due)
app.command(cls=Command)(schedule)
app.command(cls=Command)(inbox)
app.command("serve-unsubscribe", cls=Command)(serve_unsubscribe)
app.add_typer(ledger_app)


def entry() -> None:
    """Run the CLI (console script)."""
    app(prog_name="mailer")
