"""The recipients file (CSV as spreadsheets export it) and unsubscribed.csv, streamed."""

from mailer.recipients.csvfile import DELIMITERS, normalise_column, sniff_delimiter
from mailer.recipients.scan import (
    Recipient,
    RecipientScan,
    Status,
    iter_recipients,
    scan_recipients,
)
from mailer.recipients.unsubscribed import append_unsubscribed, load_unsubscribed

__all__ = [
    "DELIMITERS",
    "Recipient",
    "RecipientScan",
    "Status",
    "append_unsubscribed",
    "iter_recipients",
    "load_unsubscribed",
    "normalise_column",
    "scan_recipients",
    "sniff_delimiter",
]
