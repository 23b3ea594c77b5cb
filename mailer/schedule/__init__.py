"""Scheduled sending: each issue's state, `send-due` for cron, send_at checks, crontab lines."""

from mailer.schedule.cron import cron_lines
from mailer.schedule.due import DueResult, send_due
from mailer.schedule.repeats import Reporter
from mailer.schedule.states import Entry, State, max_lateness, read_schedule
from mailer.schedule.validation import ValidatedIssue, schedule_problems, validate_issues

__all__ = [
    "DueResult",
    "Entry",
    "Reporter",
    "State",
    "ValidatedIssue",
    "cron_lines",
    "max_lateness",
    "read_schedule",
    "schedule_problems",
    "send_due",
    "validate_issues",
]
