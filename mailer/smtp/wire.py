"""Commands out and replies in on an open SMTP socket, each within a total deadline.

A socket timeout bounds each read, not a reply: a server that trickles a byte every few
seconds would stretch a reply without end. Here every write and every reply has a deadline
for the whole of it.
"""

from __future__ import annotations

import socket
import time

MAX_LINE = 8192  # a reply line longer than this is a broken or hostile server (smtplib: 8192)
MAX_LINES = 100


class WireError(Exception):
    """The connection failed, timed out or sent something that is not an SMTP reply."""


class Wire:
    """An SMTP connection's socket, after the handshake: write commands, read replies."""

    def __init__(self, sock: socket.socket, where: str) -> None:
        self._sock = sock
        self._where = where
        self._buffer = b""
        self.sent = 0  # bytes written by the last write(), for "did the final dot go out?"

    def write(self, data: bytes, timeout: float) -> None:
        """Write all of data within timeout seconds; self.sent counts what went out."""
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        self.sent = 0
        try:
            while self.sent < len(data):
                self._sock.settimeout(self._left(deadline))
                self.sent += self._sock.send(view[self.sent :])
        except (OSError, ValueError) as err:
            raise WireError(f"{self._where}: connection lost while writing ({_said(err)})") from err

    def reply(self, timeout: float) -> tuple[int, str]:
        """Read one reply (all its lines) within timeout seconds; return its code and text."""
        deadline = time.monotonic() + timeout
        lines: list[bytes] = []
        while True:
            line = self._line(deadline)
            if len(line) < 3 or not line[:3].isdigit() or line[3:4] not in (b" ", b"-", b""):
                raise WireError(f"{self._where}: not an SMTP reply: {line[:80]!r}")
            lines.append(line[4:])
            if line[3:4] != b"-":
                text = " ".join(part.decode("utf-8", "replace").strip() for part in lines)
                return int(line[:3]), " ".join(text.split())
            if len(lines) > MAX_LINES:
                raise WireError(f"{self._where}: a reply of more than {MAX_LINES} lines")

    def _line(self, deadline: float) -> bytes:
        while True:
            end = self._buffer.find(b"\n", 0, MAX_LINE + 2)
            if end >= 0:
                line, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
                return line.rstrip(b"\r")
            if len(self._buffer) > MAX_LINE:
                raise WireError(f"{self._where}: a reply line longer than {MAX_LINE} bytes")
            try:
                self._sock.settimeout(self._left(deadline))
                chunk = self._sock.recv(65536)
            except (OSError, ValueError) as err:
                raise WireError(f"{self._where}: no reply ({_said(err)})") from err
            if not chunk:
                raise WireError(f"{self._where}: the server closed the connection")
            self._buffer += chunk

    def _left(self, deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise WireError(f"{self._where}: timed out")
        return left


def _said(err: BaseException) -> str:
    if isinstance(err, TimeoutError | socket.timeout):
        return "timed out"
    return str(err) or type(err).__name__
