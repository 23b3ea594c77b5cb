"""What comes back: bounces, complaints and unsubscribe requests, and the one-click endpoint."""

from mailer.inbox.imap import ImapMailbox, Login, login_for, oauth_login, password_login
from mailer.inbox.run import SOFT_LIMIT, InboxReport, Outcome, process_inbox
from mailer.inbox.serve import make_server
from mailer.inbox.sources import LocalMailbox, Source
from mailer.inbox.suppress import LOCK_WAIT, count_suppressions, record_suppressions, reinstate

__all__ = [
    "LOCK_WAIT",
    "SOFT_LIMIT",
    "ImapMailbox",
    "InboxReport",
    "LocalMailbox",
    "Login",
    "Outcome",
    "Source",
    "count_suppressions",
    "login_for",
    "make_server",
    "oauth_login",
    "password_login",
    "process_inbox",
    "record_suppressions",
    "reinstate",
]
