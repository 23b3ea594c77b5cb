"""The recipients file (CSV as spreadsheets export it) and unsubscribed.csv, streamed."""

from mailer.recipients.csvfile import DELIMITERS, normalise_column, sniff_delimiter
from mailer.recipients.scan import (
    Recipient,
    RecipientScan,
    Status,
    iter_recipients,
    scan_recipients,
)
from mailer.recipients.suppressed import (
    Suppression,
    append_queued,
    drained_queue,
    read_suppressions,
    suppressed_now,
    write_suppressions,
)
from mailer.recipients.unsubscribed import (
    append_unsubscribed,
    load_suppressed,
    load_unsubscribed,
    remove_unsubscribed,
)

__all__ = [
    "DELIMITERS",
    "Recipient",
    "RecipientScan",
    "Status",
    "Suppression",
    "append_queued",
    "append_unsubscribed",
    "drained_queue",
    "iter_recipients",
    "load_suppressed",
    "load_unsubscribed",
    "normalise_column",
    "read_suppressions",
    "remove_unsubscribed",
    "scan_recipients",
    "sniff_delimiter",
    "suppressed_now",
    "write_suppressions",
]
