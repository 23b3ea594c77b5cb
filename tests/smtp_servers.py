"""Real aiosmtpd servers on 127.0.0.1 for tests: fixtures, settings and a test CA.

Use them from a test module with ``pytest_plugins = ["tests.smtp_servers"]``::

    def test_refusal(make_smtp_server: MakeServer) -> None:
        server = make_smtp_server(reject={"bad@example.org"})
        with SmtpConnection(server.settings()) as connection:
            ...
        assert [r.recipients for r in server.received] == [("good@example.org",)]

PYTEST_DONT_REWRITE: test modules import helpers from here before pytest_plugins loads it,
which would otherwise warn that the module is "already imported so cannot be rewritten".
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import pytest
import trustme
from aiosmtpd.controller import Controller

from mailer.config import Smtp
from tests.smtp_faults import Chunk, Faults, FaultySMTP, Received, Recorder

HOST = "127.0.0.1"
Tls = Literal["starttls", "implicit"]
SERVER_NAME = "mx.test"  # a fixed greeting name: aiosmtpd would look up the FQDN per connection


@dataclass(frozen=True)
class ServerCA:
    """A private CA (trustme) and the server certificate it issued for 127.0.0.1."""

    ca: trustme.CA
    server_cert: trustme.LeafCert
    ca_file: Path


class _FaultyController(Controller):
    """Start one FaultySMTP per connection, all sharing one Recorder."""

    def factory(self) -> FaultySMTP:
        """Return the protocol for a new connection."""
        return FaultySMTP(self.handler, **self.SMTP_kwargs)


@dataclass
class SmtpServer:
    """A running test server: where it listens and what it has seen."""

    port: int
    recorder: Recorder
    controller: _FaultyController
    tls: Tls | None = None
    ca_file: Path | None = None
    host: str = HOST

    @property
    def received(self) -> list[Received]:
        """Return the messages the server acknowledged."""
        return self.recorder.received

    @property
    def unacknowledged(self) -> list[Received]:
        """Return the messages whose data arrived but were never acknowledged."""
        return self.recorder.unacknowledged

    @property
    def connections(self) -> int:
        """Return how many connections said EHLO."""
        return self.recorder.connections

    @property
    def commands(self) -> list[str]:
        """Return the verbs the server handled, in order."""
        return self.recorder.commands

    @property
    def transcript(self) -> list[Chunk]:
        """Return the bytes that came in and the replies that went out, in order."""
        return self.recorder.transcript

    def resume(self) -> None:
        """Read again the connections that stall_data_for stopped."""
        loop = self.controller.loop
        for protocol in self.recorder.stalled:
            transport = protocol.transport
            if isinstance(transport, asyncio.ReadTransport):
                loop.call_soon_threadsafe(transport.resume_reading)

    def settings(self, **overrides: Any) -> Smtp:
        """Return Smtp settings that reach this server (starttls with the CA if it has TLS)."""
        fields: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "security": {None: "none", "starttls": "starttls", "implicit": "ssl"}[self.tls],
            "ca_file": self.ca_file,
            "timeout": 5.0,
        }
        fields.update(overrides)
        return Smtp.model_validate(fields)

    def stop(self) -> None:
        """Close every open connection, then stop the server's thread."""
        loop = self.controller.loop
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(self._close_all(), loop).result(timeout=5)
            self.controller.stop()

    async def _close_all(self) -> None:
        # abort(), not close(): a TLS close waits for the client's close_notify, and an
        # asyncio transport still open when the loop closes is a ResourceWarning.
        for protocol in list(self.recorder.live):
            if isinstance(protocol.transport, asyncio.Transport):
                protocol.transport.abort()
        for _ in range(3):
            await asyncio.sleep(0)  # let connection_lost run before the loop stops


class MakeServer(Protocol):
    """The make_smtp_server fixture's signature."""

    def __call__(
        self, *, tls: Tls | None = None, logins: dict[str, str] | None = None, **faults: Any
    ) -> SmtpServer: ...


def free_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Return once condition holds (the server runs in its own thread), or False on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def start_smtp_server(
    ca: ServerCA,
    *,
    tls: Tls | None = None,
    logins: dict[str, str] | None = None,
    faults: Faults | None = None,
) -> SmtpServer:
    """Start a recording server; STARTTLS, when on, is required before MAIL and AUTH."""
    recorder = Recorder(faults or Faults(), logins)
    kwargs: dict[str, Any] = {
        "authenticator": recorder.authenticate,
        # Without TLS, AUTH is offered in plain text only when logins are configured, so a
        # test can check that the client does not take the bait.
        "auth_require_tls": tls is not None or not logins,
    }
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.server_cert.configure_cert(context)
        if tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        else:
            kwargs.update(ssl_context=context)
    controller = _FaultyController(
        recorder, hostname=HOST, port=free_port(), server_hostname=SERVER_NAME, **kwargs
    )
    controller.start()
    ca_file = ca.ca_file if tls is not None else None
    return SmtpServer(controller.port, recorder, controller, tls, ca_file)


@pytest.fixture(scope="session")
def smtp_test_ca(tmp_path_factory: pytest.TempPathFactory) -> ServerCA:
    """Return a private CA with a server certificate for 127.0.0.1 and localhost."""
    ca = trustme.CA()
    ca_file = tmp_path_factory.mktemp("smtp-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return ServerCA(ca, ca.issue_cert(HOST, "localhost"), ca_file)


@pytest.fixture
def make_smtp_server(smtp_test_ca: ServerCA) -> Iterator[MakeServer]:
    """Return a factory of servers (keyword arguments: tls, logins and Faults' fields)."""
    servers: list[SmtpServer] = []

    def make(
        *, tls: Tls | None = None, logins: dict[str, str] | None = None, **faults: Any
    ) -> SmtpServer:
        server = start_smtp_server(smtp_test_ca, tls=tls, logins=logins, faults=Faults(**faults))
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(make_smtp_server: MakeServer) -> SmtpServer:
    """Return a plain server on 127.0.0.1 that accepts and records everything."""
    return make_smtp_server()


@pytest.fixture
def tls_smtp_server(make_smtp_server: MakeServer) -> SmtpServer:
    """Return a server that requires STARTTLS (test CA: server.ca_file) before MAIL and AUTH."""
    return make_smtp_server(tls="starttls")
