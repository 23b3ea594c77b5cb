"""The reply table: one real reply per rule, from the relays our users send through."""

from __future__ import annotations

import pytest

from mailer.smtp.replies import RULES, Scope, Step, classify

# (who says it, the step it answers, code, text, scope, kind for the recipient)
REPLIES: list[tuple[str, Step, int, str, Scope, str]] = [
    ("Exchange Online", "DOT", 554,
     "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process "
     "message due to a permanent exception with message [BeginDiagnosticData]Cannot submit "
     "message.", "sender", "deferred"),
    ("Gmail", "RCPT", 550,
     "5.4.5 Daily user sending limit exceeded. For more information on Gmail sending limits "
     "go to https://support.google.com/a/answer/166852", "sender", "deferred"),
    ("Amazon SES", "DOT", 454, "Throttling failure: Daily message quota exceeded.",
     "sender", "deferred"),
    ("Amazon SES", "DOT", 454, "Throttling failure: Maximum sending rate exceeded.",
     "sender", "deferred"),
    ("Postfix (a policy service)", "RCPT", 450,
     "4.7.1 <a@example.org>: Recipient address rejected: rate limit exceeded",
     "sender", "deferred"),
    ("Exchange Online", "MAIL", 421, "4.3.2 The maximum number of concurrent connections has "
     "exceeded a limit, closing transmission channel", "sender", "deferred"),
    ("Gmail", "RCPT", 452, "4.5.3 Your message has too many recipients.", "sender", "deferred"),
    ("Gmail", "DOT", 421, "4.7.0 Try again later, closing connection.", "sender", "deferred"),
    ("Postfix", "MAIL", 530, "5.7.0 Must issue a STARTTLS command first", "sender", "deferred"),
    ("Exchange Online", "MAIL", 530, "5.7.57 Client not authenticated to send mail. Error: 535 "
     "5.7.139 Authentication unsuccessful", "sender", "deferred"),
    ("Exchange Online", "RCPT", 535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentic"
     "ation is disabled for the Mailbox.", "sender", "deferred"),
    ("Exchange Online", "DOT", 554, "5.2.252 SendAsDenied; news@example.org not allowed to send "
     "as learning@example.org; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptio"
     "nSendAsDenied 5.7.60", "sender", "deferred"),
    ("Exchange Online", "DOT", 550, "5.7.60 SMTP; Client does not have permissions to send as "
     "this sender", "sender", "deferred"),
    ("Exchange Online", "MAIL", 550, "5.7.708 Service unavailable. Access denied, traffic not "
     "accepted from this IP.", "sender", "deferred"),
    ("Exchange Online", "RCPT", 550, "5.7.750 Service unavailable. Client blocked from sending "
     "from unregistered domains.", "sender", "deferred"),
    ("Amazon SES", "DOT", 554, "Message rejected: Email address is not verified. The following "
     "identities failed the check in region EU-WEST-1: learning@example.org",
     "sender", "deferred"),
    ("Postfix", "RCPT", 554, "5.7.1 <a@example.org>: Relay access denied", "sender", "deferred"),
    ("Postfix", "MAIL", 553, "5.7.1 <news@example.org>: Sender address rejected: not owned by "
     "user newsletter", "sender", "deferred"),
    ("Postfix (a milter)", "RCPT", 550, "5.7.1 Sender address rejected: sender blocked",
     "sender", "deferred"),
    ("Postfix", "DOT", 552, "5.3.4 Message size exceeds fixed limit", "sender", "deferred"),
    ("Gmail", "DOT", 552, "5.3.4 Your message exceeded Google's message size limits.",
     "sender", "deferred"),
    ("Exchange Online", "DOT", 554, "5.3.4 Message too big for system", "sender", "deferred"),
    ("Postfix", "RCPT", 452, "4.3.1 Insufficient system storage", "recipient", "deferred"),
    ("RFC 5321 4.5.3.1.10", "RCPT", 552, "Requested mail action aborted: exceeded storage "
     "allocation", "recipient", "deferred"),
    ("Gmail", "RCPT", 452, "4.2.2 The email account that you tried to reach is over quota.",
     "recipient", "deferred"),
    ("Exchange Online", "RCPT", 552, "5.2.2 mailbox full; STOREDRV.Deliver.Exception:"
     "QuotaExceededException", "recipient", "deferred"),
    ("Postfix", "RCPT", 550, "5.1.1 <gone@example.org>: Recipient address rejected: User "
     "unknown in virtual mailbox table", "recipient", "failed"),
    ("Exchange Online", "RCPT", 550, "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient "
     "gone@example.org not found by SMTP address lookup", "recipient", "failed"),
    ("Gmail", "RCPT", 550, "5.2.1 The email account that you tried to reach is disabled.",
     "recipient", "failed"),
    ("Postfix (greylisting)", "RCPT", 450, "4.2.0 <a@example.org>: Recipient address rejected: "
     "Greylisted, see http://postgrey.schweikert.ch/", "recipient", "deferred"),
    ("aiosmtpd", "RCPT", 451, "4.3.0 Temporary failure, try again later", "recipient",
     "deferred"),
    ("Exim", "RCPT", 550, "No Such User Here", "recipient", "failed"),
    ("a relay", "RCPT", 554, "Transaction failed", "recipient", "failed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("who", "step", "code", "text", "scope", "kind"),
    REPLIES,
    ids=[f"{row[0]} {row[2]} {row[3][:24]}" for row in REPLIES],
)
def test_each_real_reply_is_classified(
    who: str, step: Step, code: int, text: str, scope: Scope, kind: str
) -> None:
    verdict = classify(step, code, text)
    assert (verdict.scope, verdict.kind) == (scope, kind), verdict.rule


def test_every_rule_has_a_real_reply() -> None:
    used = {classify(step, code, text).rule for _who, step, code, text, _s, _k in REPLIES}
    assert [rule.name for rule in RULES if rule not in used] == []


def test_a_success_is_sent() -> None:
    assert classify("DOT", 250, "2.0.0 Ok: queued as 4XYZ").kind == "sent"
