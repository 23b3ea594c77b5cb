"""The command line: the only code that imports Typer, prints, or decides an exit code."""

from mailer.cli.app import app, entry

__all__ = ["app", "entry"]
