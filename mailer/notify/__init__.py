"""Notify: tell the editor by email what unattended runs did, and keep the record of runs."""

from mailer.notify.events import PROBLEMS, Event, Kind, Outcome, problem_event, report_event
from mailer.notify.mail import Told, tell_editor
from mailer.notify.store import NotifyStore, RunRecord

__all__ = [
    "PROBLEMS",
    "Event",
    "Kind",
    "NotifyStore",
    "Outcome",
    "RunRecord",
    "Told",
    "problem_event",
    "report_event",
    "tell_editor",
]
