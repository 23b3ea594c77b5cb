"""SmtpConnection against real aiosmtpd servers: assert on what the server received."""

from __future__ import annotations

import email.policy
import re
import socket
import traceback
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from mailer.config import Smtp
from mailer.errors import DeliveryError, SettingsError
from mailer.smtp import ConnectionLost, Outcome, SmtpConnection, probe
from mailer.smtp import connection as transport
from mailer.smtp import handshake as smtp_handshake
from mailer.smtp.envelope import dot_stuff
from tests.smtp_servers import MakeServer, SmtpServer, free_port, wait_until

SENDER = "news@example.org"
PASSWORD = "correct-horse-battery-staple"


def build(recipient: str, subject: str = "Issue 12", body: str = "Hello.\n") -> bytes:
    """Return a small message as CRLF bytes, as message.py hands it over."""
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = recipient
    message["Subject"] = subject
    message.set_content(body)
    return message.as_bytes(policy=email.policy.SMTP)


class Accepted:
    """Count on_accepted calls, as the ledger would commit "sending"."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def send(connection: SmtpConnection, recipient: str, **kwargs: Any) -> Outcome:
    """Send a small message to recipient over connection."""
    return connection.send(SENDER, recipient, build(recipient, **kwargs), on_accepted=Accepted())


def test_sends_many_messages_over_one_connection(smtp_server: SmtpServer) -> None:
    accepted = Accepted()
    with SmtpConnection(smtp_server.settings(), local_hostname="client.test") as connection:
        for n in range(20):
            to = f"reader{n}@example.org"
            data = build(to, subject=f"Issue {n}")
            outcome = connection.send(SENDER, to, data, on_accepted=accepted)
            assert outcome.kind == "sent" and outcome.code == 250
    received = smtp_server.received
    assert len(received) == 20 and accepted.calls == 20
    assert smtp_server.connections == 1
    # RSET only abandons a refused transaction, never follows a completed one.
    assert smtp_server.commands == ["EHLO", *["MAIL", "RCPT", "DATA"] * 20]
    assert [r.recipients for r in received] == [(f"reader{n}@example.org",) for n in range(20)]
    assert received[7].sender == SENDER and received[7].message["Subject"] == "Issue 7"
    assert not received[0].tls


def test_lines_starting_with_a_dot_arrive_intact(smtp_server: SmtpServer) -> None:
    data = build("a@example.org", body=".\n..two dots\n.one dot\nend\n")
    with SmtpConnection(smtp_server.settings()) as connection:
        assert connection.send(SENDER, "a@example.org", data, on_accepted=Accepted()).kind == "sent"
    assert smtp_server.received[0].data == data


def test_a_refused_recipient_fails_and_the_others_are_sent(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(reject={"gone@example.org"})
    with SmtpConnection(server.settings()) as connection:
        outcomes = [send(connection, f"{n}@example.org") for n in ("a", "gone", "b")]
    assert [(o.kind, o.code) for o in outcomes] == [("sent", 250), ("failed", 550), ("sent", 250)]
    assert "gone@example.org" in outcomes[1].text
    assert [r.recipients for r in server.received] == [("a@example.org",), ("b@example.org",)]


def test_a_temporary_refusal_is_deferred(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(defer={"busy@example.org": 1})
    with SmtpConnection(server.settings()) as connection:
        first = send(connection, "busy@example.org")
        assert (first.kind, first.code) == ("deferred", 451)
        assert connection.is_open
        assert send(connection, "busy@example.org").kind == "sent"  # the caller's retry
    assert len(server.received) == 1 and server.connections == 1


def test_421_defers_closes_and_a_reconnect_works(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(shutdown_at=2)
    connection = SmtpConnection(server.settings())
    connection.open()
    try:
        assert send(connection, "a@example.org").kind == "sent"
        outcome = send(connection, "b@example.org")
        assert (outcome.kind, outcome.code) == ("deferred", 421)
        assert not connection.is_open
        connection.open()
        assert send(connection, "b@example.org").kind == "sent"
    finally:
        connection.close()
    assert [r.connection for r in server.received] == [1, 2]


@pytest.mark.parametrize("step", ["MAIL", "RCPT"])
def test_a_drop_before_acceptance_raises_connection_lost(
    make_smtp_server: MakeServer, step: str
) -> None:
    server = make_smtp_server(hang_up_at=step)
    accepted = Accepted()
    with SmtpConnection(server.settings()) as connection:
        with pytest.raises(ConnectionLost):
            connection.send(SENDER, "a@example.org", build("a@example.org"), on_accepted=accepted)
        assert not connection.is_open and accepted.calls == 0
        assert not server.received and not server.unacknowledged
        connection.open()
        assert send(connection, "a@example.org").kind == "sent"
    assert len(server.received) == 1


def test_a_drop_at_the_data_command_hands_nothing_over(make_smtp_server: MakeServer) -> None:
    # `sending` is committed after the 354, so a drop before it leaves nothing to record.
    server = make_smtp_server(hang_up_at="DATA")
    accepted = Accepted()
    with SmtpConnection(server.settings()) as connection:
        data = build("a@example.org")
        with pytest.raises(ConnectionLost):
            connection.send(SENDER, "a@example.org", data, on_accepted=accepted)
        assert not connection.is_open
    assert accepted.calls == 0
    assert not server.received and not server.unacknowledged


def test_a_drop_after_the_data_is_unknown(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(hang_up_at="DATA_END", hang_up_for="a@example.org")
    accepted = Accepted()
    with SmtpConnection(server.settings()) as connection:
        data = build("a@example.org")
        outcome = connection.send(SENDER, "a@example.org", data, on_accepted=accepted)
        assert not connection.is_open
    assert (outcome.kind, outcome.code, accepted.calls) == ("unknown", None, 1)
    assert outcome.text.startswith("connection lost after the message data was sent")
    assert not server.received
    assert [r.recipients for r in server.unacknowledged] == [("a@example.org",)]


def test_a_server_that_closes_after_n_messages_is_reconnected(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(close_every=2)
    with SmtpConnection(server.settings()) as connection:
        assert [send(connection, f"{n}@example.org").kind for n in "ab"] == ["sent", "sent"]
        with pytest.raises(ConnectionLost):
            send(connection, "c@example.org")
        connection.open()
        assert send(connection, "c@example.org").kind == "sent"
    assert [r.connection for r in server.received] == [1, 1, 2]


def test_starttls_with_the_configured_ca(make_smtp_server: MakeServer, caplog: Any) -> None:
    caplog.set_level("DEBUG")
    server = make_smtp_server(tls="starttls", logins={"news": PASSWORD})
    settings = server.settings(username="news", password=SecretStr(PASSWORD))
    with SmtpConnection(settings) as connection:
        assert send(connection, "a@example.org").kind == "sent"
    (received,) = server.received
    assert received.tls and received.login == "news"
    commands = server.commands
    assert commands.index("STARTTLS") < commands.index("AUTH") < commands.index("MAIL")
    assert PASSWORD not in caplog.text


def test_implicit_tls(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(tls="implicit")
    with SmtpConnection(server.settings()) as connection:
        assert send(connection, "a@example.org").kind == "sent"
    assert server.received[0].tls


def test_an_untrusted_certificate_is_refused(tls_smtp_server: SmtpServer) -> None:
    settings = tls_smtp_server.settings(ca_file=None)  # the system store knows no test CA
    with pytest.raises(DeliveryError) as caught:
        SmtpConnection(settings).open()
    message = str(caught.value)
    assert message.startswith(f"127.0.0.1:{tls_smtp_server.port}: TLS certificate check failed")
    assert "ca_file" in message and caught.value.exit_code == 4
    assert "MAIL" not in tls_smtp_server.commands and not tls_smtp_server.received


def test_a_missing_ca_file_is_a_settings_error(tls_smtp_server: SmtpServer) -> None:
    settings = tls_smtp_server.settings(ca_file="no-such-ca.pem")
    with pytest.raises(SettingsError, match=r"smtp.ca_file: cannot load no-such-ca.pem"):
        SmtpConnection(settings).open()
    assert tls_smtp_server.connections == 0


def test_ssl_against_a_plain_port_says_so(smtp_server: SmtpServer) -> None:
    with pytest.raises(DeliveryError, match="TLS handshake failed"):
        SmtpConnection(smtp_server.settings(security="ssl")).open()


def test_starttls_is_required_when_configured(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(logins={"news": PASSWORD})  # AUTH offered in plain text
    settings = server.settings(security="starttls", username="news", password=PASSWORD)
    with pytest.raises(DeliveryError, match="does not offer STARTTLS; refusing to send"):
        SmtpConnection(settings).open()
    assert server.commands == ["EHLO"] and not server.received


def test_a_refused_login_names_the_user_but_never_the_password(
    make_smtp_server: MakeServer, caplog: Any
) -> None:
    caplog.set_level("DEBUG")
    server = make_smtp_server(tls="starttls", logins={"news": "another"})
    connection = SmtpConnection(server.settings(username="news", password=PASSWORD))
    with pytest.raises(DeliveryError) as caught:
        connection.open()
    err = caught.value
    assert str(err) == (
        f'127.0.0.1:{server.port}: login refused for "news" (535); '
        "check MAILER_SMTP_USERNAME and MAILER_SMTP_PASSWORD"
    )
    shown = [str(err), repr(err), "".join(traceback.format_exception(err)), repr(connection)]
    assert not any(PASSWORD in text for text in shown)
    assert err.__context__ is None and err.__cause__ is None  # no smtplib frames with locals
    assert PASSWORD not in caplog.text and not connection.is_open


def test_a_username_without_password_is_refused_before_connecting(
    smtp_server: SmtpServer,
) -> None:
    with pytest.raises(SettingsError, match="set MAILER_SMTP_PASSWORD"):
        SmtpConnection(smtp_server.settings(username="news")).open()
    assert smtp_server.connections == 0


def test_a_server_that_wants_tls_before_mail_stops_the_run(tls_smtp_server: SmtpServer) -> None:
    with SmtpConnection(tls_smtp_server.settings(security="none")) as connection:
        with pytest.raises(DeliveryError, match="530"):
            send(connection, "a@example.org")
        assert not connection.is_open


@pytest.mark.parametrize("allow_insecure", [False, True])
def test_plain_text_to_a_remote_host_needs_allow_insecure(
    monkeypatch: pytest.MonkeyPatch, allow_insecure: bool
) -> None:
    def no_network(*args: object, **kwargs: object) -> socket.socket:
        raise ConnectionRefusedError("no network in this test")

    monkeypatch.setattr(socket, "create_connection", no_network)
    settings = Smtp(host="192.0.2.1", security="none", allow_insecure=allow_insecure)
    expected = "cannot connect" if allow_insecure else 'security = "none" sends in plain text'
    kind: type[Exception] = DeliveryError if allow_insecure else SettingsError
    with pytest.raises(kind, match=expected) as caught:
        SmtpConnection(settings).open()
    assert str(caught.value).startswith("192.0.2.1:25: ")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LocalHost.", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost.example.org", False),
        ("10.0.0.1", False),
        ("mail.example.org", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert smtp_handshake._is_loopback(host) is loopback


def test_a_slow_server_within_the_timeout_works(make_smtp_server: MakeServer) -> None:
    # Each reply takes 0.1 s and the data reply 0.5 s more: longer than the 0.4 s command
    # timeout, fine within the DATA termination timeout.
    server = make_smtp_server(reply_delay=0.1, data_delay=0.5)
    with SmtpConnection(server.settings(timeout=0.4)) as connection:
        assert send(connection, "a@example.org").kind == "sent"
    assert len(server.received) == 1


def test_no_reply_to_the_data_in_time_is_unknown(
    make_smtp_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "DATA_TERMINATION_TIMEOUT", 0.2)
    server = make_smtp_server(data_delay=5)
    with SmtpConnection(server.settings(timeout=0.3)) as connection:
        assert send(connection, "a@example.org").kind == "unknown"
    assert wait_until(lambda: len(server.unacknowledged) == 1) and not server.received


def test_a_silent_server_times_out_as_a_delivery_error(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(reply_delay=1)
    with pytest.raises(DeliveryError, match=r"cannot connect \(.*timed out\)"):
        SmtpConnection(server.settings(timeout=0.2)).open()


def test_nothing_listening_is_a_delivery_error() -> None:
    port = free_port()
    with pytest.raises(DeliveryError, match=f"127.0.0.1:{port}: cannot connect"):
        probe(Smtp(host="127.0.0.1", port=port, security="none"))


def test_probe_connects_and_leaves(tls_smtp_server: SmtpServer) -> None:
    probe(tls_smtp_server.settings())
    assert tls_smtp_server.connections == 1
    assert "MAIL" not in tls_smtp_server.commands


def test_send_on_a_closed_connection_asks_for_a_reconnect(smtp_server: SmtpServer) -> None:
    with pytest.raises(ConnectionLost):
        send(SmtpConnection(smtp_server.settings()), "a@example.org")


@given(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"\r\n")))
def test_dot_stuffing_matches_smtplib(data: bytes) -> None:
    expected = re.sub(rb"(?m)^\.", b"..", data)  # what smtplib.SMTP.data() does
    if not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert dot_stuff(data) == expected + b".\r\n"
