"""Unattended sending: states, `send-due` for cron, what follows a send (publish, notify)."""

from mailer.schedule.cron import cron_lines
from mailer.schedule.due import send_due
from mailer.schedule.followup import FollowUp, follow_up, outcome_of
from mailer.schedule.repeats import Reporter
from mailer.schedule.states import (
    MEANINGS,
    Entry,
    State,
    ledger_state,
    left_to_send,
    max_lateness,
    read_schedule,
)
from mailer.schedule.tick import DueResult
from mailer.schedule.validation import ValidatedIssue, schedule_problems, validate_issues

__all__ = [
    "MEANINGS",
    "DueResult",
    "Entry",
    "FollowUp",
    "Reporter",
    "State",
    "ValidatedIssue",
    "cron_lines",
    "follow_up",
    "ledger_state",
    "left_to_send",
    "max_lateness",
    "outcome_of",
    "read_schedule",
    "schedule_problems",
    "send_due",
    "validate_issues",
]
