"""The send ledger: one SQLite row per (issue, recipient), recorded around every SMTP step.

A row goes pending -> reserved -> sending -> sent (or deferred, failed, unknown). Every change
is appended to the journal (.mailer/journal) before it is committed to SQLite (WAL mode).

The fence (durability = "batched", the default). A run reserves a batch of K recipients (50,
or a second's worth at the rate limit if fewer) in one fsynced commit before any of their data
goes out. Per message, `sending` is committed without an fsync after the server's 354 and
before the data and its final dot; the outcome likewise after the reply. A failed write
(disk full) stops the run before the dot. What survives what:

- A killed process (kill -9, a crash): every commit already reached the WAL, which the
  operating system keeps. The next run turns `sending` into `unknown` (the dot may have gone
  out: at most one such recipient per connection) and `reserved` back into `pending` (its
  `sending` was never committed, so its data never went out). Everyone else is exactly sent
  or not sent.
- A power cut or an OS crash: commits without an fsync may be lost, back to the last fsync,
  which is the reservation of the batch in flight. Rows reserved by a run of an earlier boot
  (the boot id of /proc/sys/kernel/random/boot_id differs) become `unknown`: nobody is sent
  a second copy, and at most the reserved rows are `unknown`: K, plus up to 5 per connection
  taken from the batch before (2 queued, and for each connection the message being sent, the
  one whose commands follow it, and the one built ahead of it).

durability = "strict" fsyncs every `sending` instead (one fsync a message): after a power cut
only the messages in flight, at most one per connection, are `unknown`.

The journal lets a damaged or set-back ledger (cut to 0 bytes, restored from an old backup,
its -wal file lost) be brought forward at the next send (reconcile.py), and rebuilt by
`mailer ledger rebuild`. Back up the whole .mailer/ folder, never the ledger file alone.
"""

from mailer.ledger.database import current_boot_id
from mailer.ledger.export import export_problems_csv
from mailer.ledger.fence import Durability
from mailer.ledger.lock import folder_lock
from mailer.ledger.repair import LedgerCheck, check_ledger, rebuild_ledger
from mailer.ledger.schema import STATES, IssueSummary, Row, State
from mailer.ledger.status import IssueStatus, read_status, sent_issues
from mailer.ledger.store import Ledger

__all__ = [
    "STATES",
    "Durability",
    "IssueStatus",
    "IssueSummary",
    "Ledger",
    "LedgerCheck",
    "Row",
    "State",
    "check_ledger",
    "current_boot_id",
    "export_problems_csv",
    "folder_lock",
    "read_status",
    "rebuild_ledger",
    "sent_issues",
]
