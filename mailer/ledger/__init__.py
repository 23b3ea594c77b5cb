"""The send ledger: one SQLite row per (issue, recipient), recorded around every SMTP step."""

from mailer.ledger.export import export_problems_csv
from mailer.ledger.schema import STATES, IssueSummary, Row, State
from mailer.ledger.status import IssueStatus, read_status, sent_issues
from mailer.ledger.store import DEFAULT_SYNCHRONOUS, Ledger, Synchronous

__all__ = [
    "DEFAULT_SYNCHRONOUS",
    "STATES",
    "IssueStatus",
    "IssueSummary",
    "Ledger",
    "Row",
    "State",
    "Synchronous",
    "export_problems_csv",
    "read_status",
    "sent_issues",
]
