"""Send: plan, deliver over paced SMTP workers under the folder lock, or write a dry run."""

from mailer.send.outbox import OutboxReport, write_outbox
from mailer.send.plan import SendPlan, prepare_send, utc_now
from mailer.send.run import SendReport, deliver, send_test

__all__ = [
    "OutboxReport",
    "SendPlan",
    "SendReport",
    "deliver",
    "prepare_send",
    "send_test",
    "utc_now",
    "write_outbox",
]
