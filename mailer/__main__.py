"""Run mailer as `python -m mailer`."""

from mailer.cli import entry

entry()
