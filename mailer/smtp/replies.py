"""What an SMTP reply means: about this recipient, or about the sender (stop the run).

Relays answer the sender's problems (a spent quota, throttling, a refused login or send-as,
a blocked sender, a message too big) at MAIL, RCPT or after the data, with codes that look
like a recipient's. Marking recipients failed for those would cost them the issue for good,
so each reply is classified by the step it answers and its enhanced status code (RFC 3463)
and text, against the table below: first match wins. tests/test_replies.py has a row of real
replies (Exchange Online, Gmail, Amazon SES, Postfix) for every rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["sent", "deferred", "failed", "unknown"]
Step = Literal["MAIL", "RCPT", "DATA", "DOT"]
Scope = Literal["recipient", "sender"]
_KINDS: dict[int, Kind] = {2: "sent", 4: "deferred", 5: "failed"}  # RFC 5321 4.2.1
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class Rule:
    """A kind of reply: how to recognise it and what it means."""

    name: str  # the provider's rule, as a message names it
    scope: Scope
    kind: Kind  # for the recipient (a sender-scope reply leaves the recipient deferred)
    retry: str = ""  # when to try again (sender scope)
    codes: tuple[str, ...] = ()  # enhanced status code prefixes: "5.2.0", "4.7."
    texts: tuple[str, ...] = ()  # lower-case words of the text (any one)
    replies: tuple[int, ...] = ()  # basic reply codes
    steps: tuple[Step, ...] = ()  # empty: any step

    def matches(self, step: Step, code: int, enhanced: str, text: str) -> bool:
        """Say whether a reply fits this rule (every condition given must hold)."""
        return (
            (not self.steps or step in self.steps)
            and (not self.replies or code in self.replies)
            and (not self.codes or enhanced.startswith(self.codes))
            and (not self.texts or any(word in text for word in self.texts))
        )


_LATER = "in a few minutes (the next run, or the next cron tick)"
_TOMORROW = "in 24 hours, when the quota's window has moved on"
_FIX = "once it is fixed (ask the mail administrator), with the same command"
RULES: tuple[Rule, ...] = (
    Rule("Exchange Online's sending quota", "sender", "deferred", _TOMORROW,
         texts=("submissionquotaexceeded", "sending quota")),
    Rule("Google's daily sending limit", "sender", "deferred", _TOMORROW,
         codes=("5.4.5", "4.5.3"), texts=("limit", "quota")),
    Rule("Amazon SES's daily message quota", "sender", "deferred", _TOMORROW,
         texts=("daily message quota",)),
    Rule("the server's send rate (throttling)", "sender", "deferred", _LATER,
         texts=("throttl", "maximum sending rate", "rate limit", "too many messages",
                "unusual rate", "sending rate")),
    Rule("the server's limit on simultaneous connections", "sender", "deferred",
         "lower [limits] connections, and try again " + _LATER,
         texts=("too many connections", "concurrent connections", "connection limit")),
    Rule("the server's limit on recipients or messages per connection", "sender", "deferred",
         "lower [limits] messages_per_connection, and try again " + _LATER,
         codes=("4.5.3",), replies=(452,)),
    Rule("the server's throttling (421 4.7.x closes the connection)", "sender", "deferred",
         _LATER, codes=("4.7.",), replies=(421,)),
    Rule("Exchange Online: the client was not authenticated (5.7.57)", "sender", "deferred",
         "set smtp.username and the login, then try again " + _FIX, codes=("5.7.57",)),
    Rule("the server wants a login first (530)", "sender", "deferred",
         "set smtp.username and its password or auth, then try again", replies=(530,)),
    Rule("Exchange Online: SMTP AUTH is disabled for the mailbox or tenant (5.7.139)",
         "sender", "deferred", "turn on authenticated SMTP or use OAuth 2.0 (auth = "
         '"xoauth2"), then try again', codes=("5.7.139",)),
    Rule("Exchange Online: this mailbox may not send as the From address (5.7.60)", "sender",
         "deferred", "grant Send As on the From address, or change from, then try again",
         texts=("5.7.60", "sendasdenied")),
    Rule("Exchange Online: the tenant or sender is blocked from sending (5.7.7xx)", "sender",
         "deferred", _FIX, codes=("5.7.70", "5.7.71", "5.7.75")),
    Rule("Amazon SES: the From address or domain is not verified", "sender", "deferred",
         "verify it in SES, then try again", texts=("not verified", "not authorized to send")),
    Rule("the server will not relay for this sender", "sender", "deferred", _FIX,
         texts=("relay access denied", "relaying denied", "relay not permitted",
                "unable to relay")),
    Rule("the sender is refused by the server's policy", "sender", "deferred", _FIX,
         steps=("MAIL",), replies=tuple(range(500, 600))),
    Rule("the sender is blocked by the server's policy", "sender", "deferred", _FIX,
         texts=("sender address rejected", "sender blocked", "sender denied",
                "sender is blocked", "senderblocked", "spam")),
    Rule("the server's limit on message size", "sender", "deferred",
         "make the email smaller (fewer or smaller images), then try again",
         replies=(552,), steps=("DATA", "DOT")),
    Rule("the server's limit on message size", "sender", "deferred",
         "make the email smaller (fewer or smaller images), then try again",
         codes=("5.3.4",)),
    Rule("a full mailbox", "recipient", "deferred", codes=("5.2.2", "4.2.2")),
    Rule("the server has too little storage now", "recipient", "deferred",
         replies=(452, 552), steps=("RCPT",)),  # RFC 5321 4.5.3.1.10: 552 at RCPT is 452
    Rule("a mailbox that does not exist or cannot take mail", "recipient", "failed",
         codes=("5.1.", "5.2.1")),
    Rule("a mailbox that does not exist (said in words)", "recipient", "failed",
         replies=tuple(range(500, 600)), steps=("RCPT",),
         texts=("user unknown", "no such user", "unknown user", "no such mailbox",
                "mailbox unavailable", "does not exist", "recipient not found",
                "invalid recipient", "unknown recipient")),
    Rule("a temporary refusal", "recipient", "deferred", replies=tuple(range(400, 500))),
    Rule("a permanent refusal", "recipient", "failed", replies=tuple(range(500, 600))),
)  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """What a reply means, and the rule that says so."""

    kind: Kind
    scope: Scope
    rule: Rule | None
    enhanced: str

    @property
    def generic(self) -> bool:
        """Say whether only the reply code's first digit decided (a suspect, if repeated)."""
        return self.rule is None or self.rule.name == "a permanent refusal"


def classify(step: Step, code: int, text: str) -> Verdict:
    """Return what a reply to step means for the recipient, or that it is the sender's."""
    if 200 <= code < 300:
        return Verdict("sent", "recipient", None, "")
    found = _ENHANCED.match(text)
    enhanced = ".".join(found.groups()) if found else ""
    lowered = text.lower()
    for rule in RULES:
        if rule.matches(step, code, enhanced, lowered):
            return Verdict(rule.kind, rule.scope, rule, enhanced)
    return Verdict(reply_kind(code), "recipient", None, enhanced)


def reply_kind(code: int) -> Kind:
    """Classify a reply code by its first digit."""
    return _KINDS.get(code // 100, "unknown")


def reply_text(reply: bytes | str) -> str:
    """Return a server reply as one line of text."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())
