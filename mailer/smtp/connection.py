"""One SMTP connection that carries many messages, pipelined (RFC 2920) when offered.

A message goes in four steps, so that the caller can commit to its ledger between them:
begin (MAIL, RCPT and DATA, in one write when the server offers PIPELINING), accept (their
replies: a refusal, or 354), transmit (the data and its final dot, followed in the same write
by the next message's commands when the caller has one ready) and result (the reply to the
dot). RSET is sent only to abandon a refused transaction, never after a completed one.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import socket
from collections.abc import Callable

from mailer.config import Smtp
from mailer.smtp.envelope import (
    ConnectionLost,
    Envelope,
    Outcome,
    SenderRefused,
    commands,
    mail_command,
    rcpt_command,
)
from mailer.smtp.handshake import open_session
from mailer.smtp.replies import Step, Verdict, classify
from mailer.smtp.wire import Wire, WireError

log = logging.getLogger(__name__)

# RFC 5321 4.5.3.2.6: after the final "." the client waits at least 10 minutes for the reply,
# because the server may be delivering or scanning the message; giving up earlier turns a
# delivered message into an "unknown" one.
DATA_TERMINATION_TIMEOUT = 600.0


class SmtpConnection:
    """Carry many messages over one SMTP connection, with TLS and login as configured."""

    def __init__(self, settings: Smtp, *, local_hostname: str | None = None) -> None:
        self._settings = settings
        self._local_hostname = local_hostname
        self._where = f"{settings.host}:{settings.effective_port}"
        self._smtp: smtplib.SMTP | None = None
        self._wire: Wire | None = None
        self._begun: Envelope | None = None  # commands written, replies not read
        self._lost_after_dot: str | None = None  # the line died after the last final dot
        self.pipelining = False

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<SmtpConnection {self._where} {self._settings.security} {state}>"

    def __enter__(self) -> SmtpConnection:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        """Return whether the connection can carry another message."""
        return self._wire is not None

    def open(self) -> None:
        """Connect, secure and log in; raise DeliveryError saying host:port and what to do."""
        if self._wire is not None:
            return
        smtp = open_session(self._settings, self._where, self._local_hostname)
        assert smtp.sock is not None
        with contextlib.suppress(OSError):  # every write is whole commands: no Nagle wait
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._smtp, self._wire = smtp, Wire(smtp.sock, self._where)
        self.pipelining = smtp.has_extn("pipelining")
        self._begun = None
        log.debug("connected to %s (%s)", self._where, self._settings.security)

    def close(self) -> None:
        """Say QUIT and close, ignoring errors: the server may already be gone."""
        wire = self._wire
        if wire is not None and self._begun is None:
            try:
                wire.write(b"QUIT\r\n", self._settings.timeout)
                wire.reply(min(self._settings.timeout, 5.0))
            except WireError:
                pass
        self._drop()

    def abort(self) -> None:
        """Close at once, mid-message if need be: the server drops data without its final dot."""
        self._drop()

    def _drop(self) -> None:
        """Close the socket without a QUIT: the server has gone, or must drop the message."""
        smtp, self._smtp, self._wire, self._begun = self._smtp, None, None, None
        if smtp is not None:
            smtp.close()

    def send(
        self, sender: str, recipient: str, data: bytes, *, on_accepted: Callable[[], None]
    ) -> Outcome:
        """Send one message; call on_accepted after the 354, just before its data goes out."""
        envelope = Envelope.of(sender, recipient, data)
        self.begin(envelope)
        refusal = self.accept(envelope)
        if refusal is not None:
            return refusal
        on_accepted()
        self.transmit(envelope, None)
        return self.result(envelope)

    def begin(self, envelope: Envelope) -> None:
        """Write the message's commands (all three when pipelining); raise ConnectionLost."""
        if self._begun is envelope:
            return  # written after the last message's data
        if self._begun is not None:
            raise RuntimeError("begin: the last message's replies are still to be read")
        self._begun = envelope
        if self.pipelining:
            try:
                self._live().write(commands(envelope), self._settings.timeout)
            except WireError as err:
                self._drop()
                raise ConnectionLost(str(err)) from err

    def accept(self, envelope: Envelope) -> Outcome | None:
        """Read the replies to MAIL, RCPT and DATA: a refusal (after RSET), or None for 354."""
        replies = self._replies(envelope)
        self._begun = None
        steps: tuple[Step, ...] = ("MAIL", "RCPT", "DATA")
        for step, reply in zip(steps, replies, strict=False):
            code, text = reply
            if (step == "DATA" and code == 354) or (step != "DATA" and code < 400):
                continue
            verdict = classify(step, code, text)
            if verdict.scope == "sender":
                self._refused_sender(envelope, step, code, text, verdict)
            data = replies[2] if step != "DATA" and len(replies) == 3 else None
            return self._abandon(step, reply, data, verdict)
        if len(replies) < 3:  # the line died with nothing refused: nothing was handed over
            self._drop()
            raise ConnectionLost(f"{self._where}: the connection closed before DATA was accepted")
        return None

    def _replies(self, envelope: Envelope) -> list[tuple[int, str]]:
        """Read (lockstep: send each, then read) the replies to MAIL, RCPT and DATA.

        A refusal ends a lockstep exchange; when the line dies, what was read is kept: a 421
        read before it explains why (RFC 5321 3.8), and counts as the reply.
        """
        wire = self._live()
        lines = (mail_command(envelope), rcpt_command(envelope), b"DATA\r\n")
        replies: list[tuple[int, str]] = []
        try:
            for line in lines:
                if not self.pipelining:
                    if replies and replies[-1][0] >= 400:
                        break
                    wire.write(line, self._settings.timeout)
                replies.append(wire.reply(self._settings.timeout))
        except WireError as err:
            if not any(code >= 400 for code, _text in replies):
                self._drop()
                raise ConnectionLost(str(err)) from err
            self._drop()
        return replies

    def transmit(self, envelope: Envelope, following: Envelope | None) -> None:
        """Write the data and its final dot, then (pipelining) the following's commands.

        Raise ConnectionLost when the dot did not go out (nothing was handed over); a loss
        after it is reported by result() as unknown.
        """
        # The data goes in one write, its final dot (and the following's commands) in another:
        # a write that fails tells whether the dot can have gone out. Over TLS a write is
        # whole records, so a count of bytes could not say where the dot stood.
        head, dot = envelope.wire, b".\r\n"
        if following is not None and self.pipelining:
            self._begun = following
            dot += commands(following)
        wire = self._live()
        self._lost_after_dot = None
        timeout = max(DATA_TERMINATION_TIMEOUT, self._settings.timeout)
        try:
            wire.write(head, timeout)
        except WireError as err:
            # The terminating "." never went out, so the server cannot have accepted the
            # message (RFC 5321 4.1.1.4): it is safe to try again.
            self._drop()
            raise ConnectionLost(f"{err} before the message data was sent") from err
        try:
            wire.write(dot, timeout)
        except WireError as err:
            self._lost_after_dot = str(err)  # the dot may have gone: unknown

    def result(self, envelope: Envelope) -> Outcome:
        """Read the reply to the final dot: sent, refused, or unknown if the line went dead."""
        lost, wire = self._lost_after_dot, self._wire
        if lost is None and wire is not None:
            try:
                code, text = wire.reply(max(DATA_TERMINATION_TIMEOUT, self._settings.timeout))
            except WireError as err:
                lost = str(err)
            else:
                if 200 <= code < 300:
                    return Outcome("sent", code, text)
                verdict = classify("DOT", code, text)
                if verdict.scope == "sender":
                    self._refused_sender(envelope, "DOT", code, text, verdict)
                if code == 421:
                    self._drop()
                kind = "deferred" if verdict.kind in ("sent", "unknown") else verdict.kind
                return Outcome(kind, code, text, generic=verdict.generic and kind == "failed")
        self._drop()
        return Outcome(
            "unknown",
            None,
            f"connection lost after the message data was sent, before the server replied "
            f"({lost or 'closed'}); it may or may not have been delivered",
        )

    def _refused_sender(
        self, envelope: Envelope, step: Step, code: int, text: str, verdict: Verdict
    ) -> None:
        """Stop the run: the server refuses the sender, so it would refuse everyone."""
        self._drop()
        assert verdict.rule is not None
        what = (
            f"the server refuses mail from {envelope.sender}"
            if step == "MAIL"
            else f"the server refused the message at {step}"
        )
        raise SenderRefused(
            f"{self._where}: {what} ({code} {text}): {verdict.rule.name}. Nothing more is sent "
            "now and nobody is marked failed: everyone not yet sent waits. Try again "
            f"{verdict.rule.retry}",
            Outcome("deferred", code, f"{step}: {text}"),
        )

    def _abandon(
        self, step: str, reply: tuple[int, str], data: tuple[int, str] | None, verdict: Verdict
    ) -> Outcome:
        """Turn a refusal before the data into an Outcome, and end the transaction."""
        code, text = reply
        if code == 421:
            # RFC 5321 3.8: the server is closing the channel; the caller reconnects.
            self._drop()
            return Outcome("deferred", code, f"{step}: {text}")
        try:
            wire = self._live()
            if data is not None and data[0] == 354:
                # RFC 2920 3.1: a server that said 354 anyway gets an empty message, refused.
                wire.write(b".\r\n", self._settings.timeout)
                wire.reply(self._settings.timeout)
            wire.write(b"RSET\r\n", self._settings.timeout)
            if wire.reply(self._settings.timeout)[0] != 250:
                self._drop()  # a refused RSET: start afresh on the next message
        except (WireError, ConnectionLost):
            self._drop()
        kind = verdict.kind
        if kind in ("sent", "unknown"):
            kind = "deferred"  # a 2xx or 3xx where a refusal was due: a confused server
        generic = verdict.generic and kind == "failed"
        return Outcome(kind, code, f"{step}: {text}", generic=generic)

    def _live(self) -> Wire:
        if self._wire is None:
            raise ConnectionLost(f"{self._where}: not connected")
        return self._wire


def probe(settings: Smtp) -> None:
    """Connect, secure, log in and leave; raise DeliveryError if any step fails."""
    with SmtpConnection(settings):
        pass
