"""An aiosmtpd handler that records what arrives and misbehaves on request."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, AnyStr, Literal, cast

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

# A reply that makes FaultySMTP close the connection instead of answering.
HANG_UP = "\x00hang up"

Step = Literal["MAIL", "RCPT", "DATA", "DATA_END"]


@dataclass
class Faults:
    """What a test server does wrong; counts are used up as faults fire."""

    reject: Collection[str] = ()  # 550 at RCPT for these addresses, every time
    defer: dict[str, int] = field(default_factory=dict)  # address -> how many 451s at RCPT
    shutdown_at: int | None = None  # 421 and close at the Nth MAIL this server sees, once
    # Close the connection without a reply: at MAIL, RCPT, the DATA command, or after the
    # message data (DATA_END: the server has the message, the client never hears back).
    hang_up_at: Step | None = None
    hang_up_for: str | None = None  # only when this recipient is in the envelope
    hang_ups: int = 1  # how many times, then behave
    close_every: int | None = None  # close after every N accepted messages on a connection
    reply_delay: float = 0.0  # seconds before replying to EHLO, RSET, MAIL, RCPT, DATA
    data_delay: float = 0.0  # more seconds before replying to the message data
    refuse_login: bool = False  # 535 to every AUTH
    refuse_sender: bool = False  # 550 to every MAIL FROM (a relay that will not take our From)
    garble_for: str | None = None  # answer RCPT for this address with a 10 KB line, once
    pipelining: bool = False  # advertise PIPELINING (RFC 2920); aiosmtpd handles it as it is
    greet_421: int = 0  # greet this many connections with 421 and close, then behave
    # Answer the data of every message after the first `refuse_data_after` with this reply
    # (a spent quota, a relay-wide policy); the refused messages are not received.
    refuse_data_after: int | None = None
    refuse_data_with: str = (
        "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"
    )
    # After the 354 for this recipient, stop reading the connection (the client's write of
    # the data then blocks once the socket buffers are full) until SmtpServer.resume().
    stall_data_for: str | None = None
    # Before the 354 for this recipient, wait until Recorder.go_on is set (the test's moment).
    hold_354_for: str | None = None

    def __post_init__(self) -> None:
        if self.hang_up_at == "MAIL" and self.hang_up_for is not None:
            raise ValueError("hang_up_for needs a recipient; MAIL comes before RCPT")


@dataclass(frozen=True)
class Arrival:
    """One command as it reached the server, before any reply_delay: for timing tests."""

    verb: str
    address: str | None  # MAIL's sender, RCPT's recipient
    at: float  # time.monotonic() in the server's thread


@dataclass(frozen=True)
class Chunk:
    """Bytes as they crossed one connection: in from the client, or a reply out."""

    wire: int  # the connection, numbered as it was accepted (before any EHLO)
    incoming: bool
    data: bytes


@dataclass(frozen=True)
class Received:
    """One message as the server saw it."""

    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage
    data: bytes
    tls: bool
    login: str | None
    connection: int


class FaultySMTP(SMTP):
    """aiosmtpd's SMTP, able to hang up and to close after 421 as RFC 5321 3.8 says."""

    def __init__(self, handler: Recorder, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.recorder = handler
        self.connection = 0  # set at the first EHLO
        self.messages = 0
        self.wire = 0  # set when the connection is accepted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Track the connection so teardown can close it."""
        super().connection_made(transport)
        self.recorder.live.add(self)
        self.wire = self.recorder.accepted()

    def data_received(self, data: bytes) -> None:
        """Keep the bytes as they arrived, for tests of what was written when."""
        self.recorder.heard(Chunk(self.wire, True, bytes(data)))
        super().data_received(data)

    def connection_lost(self, error: Exception | None) -> None:
        """Forget the connection."""
        self.recorder.live.discard(self)
        super().connection_lost(error)

    async def push(self, status: AnyStr) -> None:
        """Send a reply, or hang up; close the connection after a 421."""
        if status == HANG_UP:
            self.hang_up()
            return
        faults = self.recorder.faults
        if isinstance(status, str) and status.startswith("220 ") and faults.greet_421 > 0:
            faults.greet_421 -= 1
            await super().push("421 4.3.2 Service not available, closing transmission channel")
            self.hang_up()
            return
        text = status if isinstance(status, str) else status.decode("utf-8", "replace")
        self.recorder.heard(Chunk(self.wire, False, text.encode()))
        await super().push(status)
        if text.startswith("421"):
            self.hang_up()
        if text.startswith("354") and self.recorder.should_stall(self.envelope):
            self.stall()

    def stall(self) -> None:
        """Stop reading the connection until the test resumes it."""
        if isinstance(self.transport, asyncio.ReadTransport):
            self.transport.pause_reading()
            self.recorder.note_stall(self)

    async def smtp_DATA(self, arg: str) -> None:
        """Hang up on the DATA command, or hold its 354 back, when asked to (no hook runs there)."""
        if self.recorder.should_hang_up("DATA", self.envelope):
            self.hang_up()
            return
        if self.recorder.should_hold(self.envelope):
            self.recorder.holding.set()
            while not self.recorder.go_on.is_set():
                await asyncio.sleep(0.01)
        await super().smtp_DATA(arg)

    def hang_up(self) -> None:
        """Close the connection now."""
        if self.transport is not None:
            self.transport.close()


class Recorder:
    """Record every message, connection and login; inject the configured faults."""

    def __init__(self, faults: Faults, logins: dict[str, str] | None = None) -> None:
        self.faults = faults
        self.logins = logins or {}
        self.live: set[FaultySMTP] = set()  # touched only in the server's thread
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._unacknowledged: list[Received] = []
        self._commands: list[str] = []
        self._arrivals: list[Arrival] = []
        self._connections = 0
        self._mails = 0
        self._accepted = 0
        self._transcript: list[Chunk] = []
        self._stalled: list[FaultySMTP] = []
        self.holding = threading.Event()  # hold_354_for is holding a 354 back
        self.go_on = threading.Event()  # set by the test: send it

    @property
    def received(self) -> list[Received]:
        """Return the messages the server accepted and acknowledged."""
        with self._lock:
            return list(self._received)

    @property
    def unacknowledged(self) -> list[Received]:
        """Return the messages whose data arrived but whose reply the client never got."""
        with self._lock:
            return list(self._unacknowledged)

    @property
    def commands(self) -> list[str]:
        """Return the verbs the server handled, in order (EHLO, STARTTLS, AUTH, MAIL...)."""
        with self._lock:
            return list(self._commands)

    @property
    def arrivals(self) -> list[Arrival]:
        """Return every command with its address and arrival time, in order."""
        with self._lock:
            return list(self._arrivals)

    @property
    def connections(self) -> int:
        """Return how many connections said EHLO."""
        with self._lock:
            return self._connections

    @property
    def transcript(self) -> list[Chunk]:
        """Return every chunk that came in and every reply that went out, in order."""
        with self._lock:
            return list(self._transcript)

    @property
    def stalled(self) -> list[FaultySMTP]:
        """Return the connections stall_data_for has stopped reading."""
        with self._lock:
            return list(self._stalled)

    def note_stall(self, protocol: FaultySMTP) -> None:
        """Remember a connection that stopped reading, so it can be resumed."""
        with self._lock:
            self._stalled.append(protocol)

    def accepted(self) -> int:
        """Number a new connection."""
        with self._lock:
            self._accepted += 1
            return self._accepted

    def heard(self, chunk: Chunk) -> None:
        """Keep one chunk of the transcript."""
        with self._lock:
            self._transcript.append(chunk)

    def should_stall(self, envelope: Envelope | None) -> bool:
        """Return whether to stop reading after this 354, using up the stall."""
        wanted = self.faults.stall_data_for
        if wanted is None or envelope is None or wanted not in envelope.rcpt_tos:
            return False
        self.faults.stall_data_for = None
        return True

    def should_hold(self, envelope: Envelope | None) -> bool:
        """Return whether to hold this 354 back, using up the hold."""
        wanted = self.faults.hold_354_for
        if wanted is None or envelope is None or wanted not in envelope.rcpt_tos:
            return False
        self.faults.hold_354_for = None
        return True

    def _note(self, verb: str, address: str | None = None) -> None:
        with self._lock:
            self._commands.append(verb)
            self._arrivals.append(Arrival(verb, address, time.monotonic()))

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    def should_hang_up(
        self, step: Step, envelope: Envelope | None, address: str | None = None
    ) -> bool:
        """Return whether to drop the connection at this step, using up one hang-up."""
        faults = self.faults
        if faults.hang_up_at != step or faults.hang_ups <= 0:
            return False
        addresses = [address] if envelope is None else [*envelope.rcpt_tos, address]
        if faults.hang_up_for is not None and faults.hang_up_for not in addresses:
            return False
        faults.hang_ups -= 1
        return True

    async def handle_EHLO(
        self, server: FaultySMTP, session: Session, envelope: Envelope, name: str, lines: list[str]
    ) -> list[str]:
        """Count the connection at its first EHLO (STARTTLS brings a second)."""
        self._note("EHLO")
        session.host_name = name  # the 5-argument hook must set it (aiosmtpd docs)
        if not server.connection:
            with self._lock:
                self._connections += 1
                server.connection = self._connections
        await self._pause(self.faults.reply_delay)
        if self.faults.pipelining:
            return [lines[0], "250-PIPELINING", *lines[1:]]
        return lines

    def handle_STARTTLS(self, server: FaultySMTP, session: Session, envelope: Envelope) -> bool:
        """Note that the TLS handshake finished."""
        self._note("STARTTLS")
        return True

    async def handle_AUTH(
        self, server: FaultySMTP, session: Session, envelope: Envelope, args: list[str]
    ) -> object:
        """Note the attempt and let aiosmtpd run the mechanism."""
        self._note("AUTH")
        return MISSING

    def authenticate(
        self, server: FaultySMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """Accept the configured logins unless told to refuse every one."""
        login = cast(LoginPassword, data)
        user, password = login.login.decode(), login.password.decode()
        ok = not self.faults.refuse_login and self.logins.get(user) == password
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    async def handle_RSET(self, server: FaultySMTP, session: Session, envelope: Envelope) -> object:
        """Note RSET."""
        self._note("RSET")
        await self._pause(self.faults.reply_delay)
        return MISSING

    async def handle_MAIL(
        self, server: FaultySMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> object:
        """Shut down (421) or hang up when told to."""
        self._note("MAIL", address)
        await self._pause(self.faults.reply_delay)
        with self._lock:
            self._mails += 1
            mails = self._mails
        if mails == self.faults.shutdown_at:
            return "421 4.3.2 Service shutting down, try again later"
        if self.faults.refuse_sender:
            return "550 5.7.1 Sender not authorised"
        if self.should_hang_up("MAIL", envelope):
            return HANG_UP
        return MISSING

    async def handle_RCPT(
        self, server: FaultySMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> object:
        """Refuse, defer or hang up for the configured addresses."""
        self._note("RCPT", address)
        if address == self.faults.garble_for:
            self.faults.garble_for = None
            return "250 " + "x" * 10_000  # longer than smtplib will read (_MAXLINE)
        await self._pause(self.faults.reply_delay)
        faults = self.faults
        if self.should_hang_up("RCPT", envelope, address):
            return HANG_UP
        if address in faults.reject:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if faults.defer.get(address, 0) > 0:
            faults.defer[address] -= 1
            return "451 4.3.0 Temporary failure, try again later"
        return MISSING

    async def handle_DATA(self, server: FaultySMTP, session: Session, envelope: Envelope) -> str:
        """Record the message, or hang up after reading it."""
        self._note("DATA")
        data = bytes(envelope.original_content or b"")
        message = email.message_from_bytes(data, policy=email.policy.default)
        received = Received(
            sender=envelope.mail_from or "",
            recipients=tuple(envelope.rcpt_tos),
            message=message,
            data=data,
            tls=_uses_tls(server),
            login=session.auth_data,
            connection=server.connection,
        )
        if self.should_hang_up("DATA_END", envelope):
            with self._lock:
                self._unacknowledged.append(received)
            return HANG_UP
        after = self.faults.refuse_data_after
        if after is not None and len(self._received) >= after:
            return self.faults.refuse_data_with
        try:
            await self._pause(self.faults.reply_delay + self.faults.data_delay)
        except asyncio.CancelledError:
            # The client gave up waiting (or the server stopped): it never heard back.
            with self._lock:
                self._unacknowledged.append(received)
            raise
        with self._lock:
            self._received.append(received)
        server.messages += 1
        every = self.faults.close_every
        if every and server.messages % every == 0:
            await server.push("250 2.0.0 OK")
            return HANG_UP
        return "250 2.0.0 OK"


def _uses_tls(server: SMTP) -> bool:
    """Return whether the connection is encrypted (STARTTLS or implicit TLS)."""
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None
