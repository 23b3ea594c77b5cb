"""A tiny SMTP server on 127.0.0.1 that trickles its replies, one byte at a time, for ever.

Each read of the client sees a byte well within its socket timeout, so only a deadline for the
whole reply (or the whole handshake) ends the wait. aiosmtpd cannot do this: it writes a reply
in one piece.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pytest

from tests.smtp_servers import HOST

Trickle = Literal["greeting", "MAIL"]
BYTE_EVERY = 0.3  # seconds


class _Handler(socketserver.StreamRequestHandler):
    server: TricklingServer

    def handle(self) -> None:
        owner = self.server
        if owner.trickle_from == "greeting":
            self._trickle()
            return
        self.wfile.write(b"220 trickle.test ESMTP\r\n")
        while line := self.rfile.readline(1024):
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.wfile.write(b"250-trickle.test\r\n250 8BITMIME\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            elif verb == b"MAIL":
                owner.count_mail()
                self._trickle()
                return
            else:
                self.wfile.write(b"250 OK\r\n")

    def _trickle(self) -> None:
        """Send a reply that never ends ("250-" and one more letter every BYTE_EVERY)."""
        owner = self.server
        first = b"220-" if owner.trickle_from == "greeting" else b"250-"
        try:
            for byte in first:
                self.wfile.write(bytes([byte]))
                if owner.stopping.wait(BYTE_EVERY):
                    return
            while not owner.stopping.wait(BYTE_EVERY):
                self.wfile.write(b"a")
        except OSError:
            return  # the client gave up and closed: what the test wants


class TricklingServer(socketserver.ThreadingTCPServer):
    """Trickle from the greeting, or answer the handshake and trickle from the reply to MAIL."""

    daemon_threads = True
    allow_reuse_address = True
    tls = None  # what make_folder asks of a server: plain SMTP
    ca_file: Path | None = None

    def __init__(self, trickle_from: Trickle) -> None:
        super().__init__((HOST, 0), _Handler)
        self.trickle_from = trickle_from
        self.stopping = threading.Event()
        self.mails = 0
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        """Return the port it listens on."""
        port: int = self.server_address[1]
        return port

    def count_mail(self) -> None:
        """Count a MAIL command (each one is a connection that got as far as sending)."""
        with self._lock:
            self.mails += 1

    def get_request(self) -> tuple[socket.socket, object]:
        """Accept a connection with writes that flush each byte at once."""
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address


@pytest.fixture
def trickling_server() -> Iterator[Callable[[Trickle], TricklingServer]]:
    """Return a factory of running trickling servers, each stopped after the test."""
    started: list[TricklingServer] = []

    def start(trickle_from: Trickle) -> TricklingServer:
        server = TricklingServer(trickle_from)
        started.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    yield start
    for server in started:
        server.stopping.set()
        server.shutdown()
        server.server_close()
