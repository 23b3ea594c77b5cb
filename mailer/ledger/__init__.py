"""The send ledger: one SQLite row per (issue, recipient), recorded around every SMTP step.

What survives what. WAL + NORMAL survives a killed process but can lose the last commits on
power loss; WAL + FULL fsyncs every commit and survives both. benchmarks/ledger_sync.py
measured FULL at ~2,200-3,000 commits/s against NORMAL's ~7,000-9,000. Only one mark must
survive a power cut: `sending`, written before the message data goes out (if it were lost,
the recipient would look pending and get the issue again). So `sending` commits with FULL and
every other write with NORMAL: a `sent` lost to a power cut leaves the durable `sending`,
which the next run turns into `unknown`, never a second message. In WAL mode a FULL commit
also makes every earlier NORMAL commit durable, so the order of events is kept.
"""

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
