"""OAuth 2.0 logins (XOAUTH2, OAUTHBEARER) against a real token endpoint and SMTP server.

Both servers run on 127.0.0.1 (tests/oauth_servers.py): the HTTPS endpoint counts grants and
issues tokens into a book the SMTP server checks, so a test sees which token each login
carried, which were refused, and when a new one was asked for.
"""

from __future__ import annotations

import base64
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailer.config import Smtp
from mailer.errors import DeliveryError, SettingsError
from mailer.folder import load_settings
from mailer.ledger import Ledger
from mailer.smtp import LoginRefusedError, SmtpConnection
from mailer.smtp.oauth import Tokens
from tests.oauth_servers import (
    CLIENT_ID,
    CLIENT_SECRET,
    MAILBOX,
    REFRESH_TOKEN,
    SCOPE,
    OAuthRecorder,
    TokenBook,
    TokenEndpoint,
    start_oauth_smtp_server,
    start_token_endpoint,
)
from tests.sending import ISSUE, addresses, cli, deliveries, make_folder
from tests.smtp_servers import MakeServer, ServerCA, SmtpServer

STEM = Path(ISSUE).stem
SECRET_ENV = {"MAILER_OAUTH_CLIENT_SECRET": CLIENT_SECRET}


@pytest.fixture
def book() -> TokenBook:
    """Return an empty book of issued tokens, shared by the endpoint and the SMTP server."""
    return TokenBook()


@pytest.fixture
def endpoints(smtp_test_ca: ServerCA, book: TokenBook) -> Iterator[Any]:
    """Return a factory of token endpoints (TokenEndpoint's options), stopped afterwards."""
    started: list[TokenEndpoint] = []

    def start(**options: Any) -> TokenEndpoint:
        endpoint = start_token_endpoint(smtp_test_ca, book, **options)
        started.append(endpoint)
        return endpoint

    yield start
    for endpoint in started:
        endpoint.stop()


@pytest.fixture
def relays(smtp_test_ca: ServerCA, book: TokenBook) -> Iterator[Any]:
    """Return a factory of SMTP servers that demand the book's tokens, stopped afterwards."""
    started: list[SmtpServer] = []

    def start(offer: tuple[str, ...] = ("LOGIN", "XOAUTH2")) -> SmtpServer:
        server = start_oauth_smtp_server(smtp_test_ca, book, offer=offer)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def logins(server: SmtpServer) -> list[Any]:
    """Return the bearer logins the server saw."""
    recorder = server.recorder
    assert isinstance(recorder, OAuthRecorder)
    return list(recorder.bearer_logins)


def client_settings(endpoint: TokenEndpoint) -> str:
    """Return [smtp] lines for the built-in client against this endpoint."""
    return (
        f'username = "{MAILBOX}"\nauth = "xoauth2"\ntoken_url = "{endpoint.url}"\n'
        f'client_id = "{CLIENT_ID}"\nscope = "{SCOPE}"\n'
    )


def smtp_settings(server: SmtpServer, endpoint: TokenEndpoint, **more: Any) -> Smtp:
    """Return Smtp settings for the built-in client, with the client secret."""
    fields = {
        "username": MAILBOX,
        "auth": "xoauth2",
        "token_url": endpoint.url,
        "client_id": CLIENT_ID,
        "scope": SCOPE,
        "client_secret": CLIENT_SECRET,
        **more,
    }
    return server.settings(**fields)


def send_one(connection: SmtpConnection, recipient: str = "a@example.org") -> str:
    data = b"Subject: hi\r\nFrom: news@example.org\r\n\r\nHello.\r\n"
    return connection.send(MAILBOX, recipient, data, on_accepted=lambda: None).kind


def assert_nowhere(tokens: list[str], folder: Path, *shown: str) -> None:
    """Assert that no token (or its SASL form) is in the texts shown or any file of folder."""
    forms = [t.encode() for t in tokens]
    forms += [
        base64.b64encode(f"user={MAILBOX}\x01auth=Bearer {t}\x01\x01".encode()) for t in tokens
    ]
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert (folder / ".mailer" / "log").is_file()
    for form in forms:
        assert not any(form.decode() in text for text in shown)
        assert not [path for path in files if form in path.read_bytes()]


def test_a_send_logs_in_with_xoauth2_and_one_token_serves_every_connection(
    isolated: Path, endpoints: Any, relays: Any, book: TokenBook
) -> None:
    endpoint, server = endpoints(), relays()
    emails = addresses(12)
    limits = "per_second = 10000\nconnections = 3\nmessages_per_connection = 2\n"
    make_folder(isolated, server, emails, limits=limits, smtp=client_settings(endpoint))
    code, out, err = cli("-v", "send", ISSUE, "--yes", env=SECRET_ENV)
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)
    assert {r.login for r in server.received} == {MAILBOX}
    assert len(endpoint.grants) == 1  # cached, and shared by the three connections' threads
    (grant,) = endpoint.grants
    assert (grant.grant_type, grant.client_id, grant.scope) == (
        "client_credentials",
        CLIENT_ID,
        SCOPE,
    )
    assert grant.client_secret == CLIENT_SECRET and grant.refresh_token is None
    seen = logins(server)
    assert len(seen) == server.connections >= 6  # a login per connection, never two
    assert {(s.mechanism, s.user, s.token, s.accepted) for s in seen} == {
        ("XOAUTH2", MAILBOX, book.issued[0], True)
    }
    assert_nowhere(book.issued, isolated, out, err)
    assert CLIENT_SECRET not in out + err


def test_a_token_is_renewed_shortly_before_it_expires_in_a_long_run(
    isolated: Path, endpoints: Any, relays: Any, book: TokenBook
) -> None:
    # Each token says 2 s; the server takes it for 2.4 s (slack for a slow test machine).
    endpoint, server = endpoints(expires_in=2, lifetime=2.4), relays()
    emails = addresses(8)
    limits = "per_second = 2\nmessages_per_connection = 1\n"  # ~4 s, a connection a message
    make_folder(isolated, server, emails, limits=limits, smtp=client_settings(endpoint))
    code, _out, err = cli("send", ISSUE, "--yes", env=SECRET_ENV)
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)
    assert len(endpoint.grants) >= 2  # the run outlived its first token
    assert all(login.accepted for login in logins(server))  # renewed before, not after, expiry
    assert len(logins(server)) == 8


def test_a_kept_token_refused_with_535_is_renewed_once_then_the_send_goes_on(
    isolated: Path, endpoints: Any, relays: Any, book: TokenBook
) -> None:
    # The endpoint says an hour, but the server takes each token for one login only: the
    # second connection's kept token is refused, as a revoked or early-expired one is.
    endpoint, server = endpoints(uses=1), relays()
    emails = addresses(2)
    limits = "per_second = 10000\nmessages_per_connection = 1\n"
    make_folder(isolated, server, emails, limits=limits, smtp=client_settings(endpoint))
    code, _out, err = cli("send", ISSUE, "--yes", env=SECRET_ENV)
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)
    first, second = book.issued
    assert [(s.token, s.accepted, s.answer_to_error) for s in logins(server)] == [
        (first, True, None),
        (first, False, b""),  # the error challenge answered with an empty line (XOAUTH2)
        (second, True, None),
    ]
    assert len(endpoint.grants) == 2


def test_a_refused_token_is_tried_once_and_stops_the_whole_run(
    isolated: Path, endpoints: Any, relays: Any, book: TokenBook
) -> None:
    endpoint, server = endpoints(lifetime=0), relays()  # the server takes none of them
    emails = addresses(9)
    limits = "per_second = 10000\nconnections = 3\n"
    make_folder(isolated, server, emails, limits=limits, smtp=client_settings(endpoint))
    code, out, err = cli("-v", "send", ISSUE, "--yes", env=SECRET_ENV)
    assert code == 4
    assert server.commands.count("AUTH") == 1  # not once per connection, nor per mechanism
    assert len(endpoint.grants) == 1  # a new token is no use: it was just obtained
    assert f'127.0.0.1:{server.port}: login refused for "{MAILBOX}" (535 5.7.3' in err
    assert f"the access token from {endpoint.url} was not accepted" in err
    assert "Traceback" not in out + err
    assert server.received == []
    with Ledger.open(isolated) as ledger:
        assert ledger.counts(STEM)["pending"] == 9
    assert_nowhere(book.issued, isolated, out, err)


def test_a_refused_password_is_tried_once_per_run_too(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server(tls="starttls", logins={"news": "right"}, refuse_login=True)
    limits = "per_second = 10000\nconnections = 3\n"
    make_folder(isolated, server, addresses(9), limits=limits, smtp='username = "news"\n')
    code, _out, err = cli("send", ISSUE, "--yes", env={"MAILER_SMTP_PASSWORD": "wrong"})
    assert code == 4, err
    assert "login refused" in err
    assert server.commands.count("AUTH") == 1  # smtplib's login() would try PLAIN, then LOGIN


def test_the_refresh_token_grant(endpoints: Any, relays: Any, book: TokenBook) -> None:
    endpoint, server = endpoints(), relays()
    settings = smtp_settings(server, endpoint, client_secret=None, refresh_token=REFRESH_TOKEN)
    with SmtpConnection(settings) as connection:
        assert send_one(connection) == "sent"
    (grant,) = endpoint.grants
    assert (grant.grant_type, grant.refresh_token, grant.client_secret) == (
        "refresh_token",
        REFRESH_TOKEN,
        None,
    )
    revoked = smtp_settings(server, endpoint, refresh_token="revoked-refresh-token")
    with pytest.raises(LoginRefusedError) as caught:
        SmtpConnection(revoked).open()
    assert str(caught.value) == (
        f"{endpoint.url}: 400 invalid_grant (Token expired.): the refresh token has expired "
        "or was revoked: set a new one in MAILER_OAUTH_REFRESH_TOKEN"
    )
    assert endpoint.grants[-1].client_secret == CLIENT_SECRET  # sent along when set


def test_oauthbearer_when_the_server_offers_it_and_not_xoauth2(
    endpoints: Any, relays: Any, book: TokenBook
) -> None:
    endpoint, server = endpoints(), relays(offer=("OAUTHBEARER",))
    with SmtpConnection(smtp_settings(server, endpoint)) as connection:
        assert send_one(connection) == "sent"
    (login,) = logins(server)
    assert (login.mechanism, login.user, login.token, login.accepted) == (
        "OAUTHBEARER",
        MAILBOX,
        book.issued[0],
        True,
    )
    assert login.fields == {"host": "127.0.0.1", "port": str(server.port)}


def test_a_refused_oauthbearer_login_answers_the_error_challenge_with_ctrl_a(
    endpoints: Any, relays: Any, book: TokenBook
) -> None:
    endpoint, server = endpoints(lifetime=0), relays(offer=("OAUTHBEARER", "XOAUTH2"))
    settings = smtp_settings(server, endpoint)
    with pytest.raises(LoginRefusedError) as caught:
        SmtpConnection(settings).open()
    (login,) = logins(server)
    assert login.mechanism == "XOAUTH2"  # preferred when both are offered
    server2 = relays(offer=("OAUTHBEARER",))
    with pytest.raises(LoginRefusedError):
        SmtpConnection(smtp_settings(server2, endpoint)).open()
    (login2,) = logins(server2)
    assert login2.answer_to_error == b"\x01"  # RFC 7628 3.2.3
    assert "status 401" in str(caught.value)


def test_a_refusal_is_final_for_the_settings_and_keeps_no_secret_in_the_traceback(
    endpoints: Any, relays: Any, book: TokenBook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="mailer")
    endpoint, server = endpoints(lifetime=0), relays()
    settings = smtp_settings(server, endpoint)
    errors = []
    for _ in range(3):
        with pytest.raises(LoginRefusedError) as caught:
            SmtpConnection(settings).open()
        errors.append(caught.value)
    assert server.commands.count("AUTH") == 1 and len(endpoint.grants) == 1
    assert len({str(e) for e in errors}) == 1
    first = errors[0]
    assert first.__cause__ is None and first.__context__ is None  # no smtplib frames
    shown = [str(first), repr(first), "".join(traceback.format_exception(first)), caplog.text]
    assert not any(book.issued[0] in text or CLIENT_SECRET in text for text in shown)
    assert "got an access token" in caplog.text


def test_a_wrong_client_secret_names_the_endpoint_and_what_to_check(
    endpoints: Any, relays: Any
) -> None:
    endpoint, server = endpoints(), relays()
    settings = smtp_settings(server, endpoint, client_secret="not-the-secret")
    with pytest.raises(LoginRefusedError) as caught:
        SmtpConnection(settings).open()
    message = str(caught.value)
    assert message.startswith(f"{endpoint.url}: 401 invalid_client (AADSTS7000215: Invalid")
    assert message.endswith(
        "check client_id and MAILER_OAUTH_CLIENT_SECRET (the secret's "
        "value, not its ID; it may have expired)"
    )
    assert "Trace ID" not in message and "not-the-secret" not in message
    with pytest.raises(LoginRefusedError):
        SmtpConnection(settings).open()
    assert len(endpoint.grants) == 1 and server.connections == 0


def test_a_failing_token_service_is_not_final(endpoints: Any, relays: Any) -> None:
    endpoint = endpoints(failures=[(503, {"error": "temporarily_unavailable"})])
    server = relays()
    settings = smtp_settings(server, endpoint)
    with pytest.raises(DeliveryError) as caught:
        SmtpConnection(settings).open()
    assert not isinstance(caught.value, LoginRefusedError)
    assert str(caught.value) == (
        f"{endpoint.url}: 503 temporarily_unavailable: the token service failed; try again later"
    )
    with SmtpConnection(settings) as connection:  # a later try may work
        assert send_one(connection) == "sent"
    assert len(endpoint.grants) == 2


def test_an_untrusted_token_endpoint_is_refused(endpoints: Any, relays: Any) -> None:
    endpoint, server = endpoints(), relays()
    settings = smtp_settings(server, endpoint, ca_file=None)  # the system store only
    with pytest.raises(DeliveryError, match=r"TLS certificate check failed .*smtp.ca_file"):
        SmtpConnection(settings).open()
    assert endpoint.grants == [] and server.connections == 0


def write_script(tmp_path: Path, body: str) -> str:
    """Write a Python token command; return its command line (run with this Python)."""
    script = tmp_path / "token.py"
    script.write_text("import sys, pathlib\n" + body, encoding="utf-8")
    return f"{sys.executable} {script}"


def test_a_token_command_is_run_once_and_its_token_used(
    isolated: Path, tmp_path: Path, relays: Any, book: TokenBook
) -> None:
    server = relays()
    token = book.issue(3600)
    runs = tmp_path / "runs"
    command = write_script(
        tmp_path,
        f"with open({str(runs)!r}, 'a') as f: f.write('run\\n')\nprint({token!r})\n",
    )
    limits = "per_second = 10000\nconnections = 2\nmessages_per_connection = 2\n"
    smtp = f'username = "{MAILBOX}"\nauth = "xoauth2"\ntoken_command = "{command}"\n'
    emails = addresses(8)
    make_folder(isolated, server, emails, limits=limits, smtp=smtp)
    code, out, err = cli("-v", "send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)
    assert runs.read_text() == "run\n"  # once for the four connections
    assert {login.token for login in logins(server)} == {token}
    assert_nowhere([token], isolated, out, err)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "print('leaked-token-value')\nprint('oama: no refresh token for news', file=sys.stderr)"
            "\nprint('try oama authorize', file=sys.stderr)\nsys.exit(3)",
            "exited 3: try oama authorize; check it by running it yourself",
        ),
        (
            "print('leaked-token-value')\nprint('and a second line')",
            "printed no access token (one line of letters, digits and -._~+/=); check it by "
            "running it yourself",
        ),
        (
            "import time\nprint('leaked-token-value', flush=True)\ntime.sleep(5)",
            "did not finish within 1 s (smtp.timeout); check it by running it yourself",
        ),
    ],
    ids=["fails", "prints-two-lines", "hangs"],
)
def test_a_failing_token_command_shows_its_stderr_never_its_stdout(
    tmp_path: Path, relays: Any, body: str, expected: str
) -> None:
    server = relays()
    command = write_script(tmp_path, body)
    settings = server.settings(username=MAILBOX, auth="xoauth2", token_command=command, timeout=1)
    with pytest.raises(DeliveryError) as caught:
        SmtpConnection(settings).open()
    assert str(caught.value) == f"token_command `{command}` {expected}".replace("` did", "`: did")
    assert "leaked-token-value" not in str(caught.value)
    assert caught.value.__context__ is None and server.connections == 0


def test_a_missing_token_command_says_so(relays: Any) -> None:
    server = relays()
    settings = server.settings(
        username=MAILBOX, auth="xoauth2", token_command="/no/such/oama access x"
    )
    with pytest.raises(DeliveryError, match=r"`: /no/such/oama not found; give its full path"):
        SmtpConnection(settings).open()


def test_tokens_are_fetched_one_at_a_time_and_kept() -> None:
    calls = []

    class Slow:
        where = "a slow source"

        def fetch(self) -> tuple[str, float | None]:
            calls.append(threading.current_thread().name)
            time.sleep(0.2)
            return f"token-{len(calls)}", 3600.0

    tokens = Tokens(Slow())
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(tokens.get().value)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and got == ["token-1"] * 8
    first = tokens.get()
    assert tokens.renew(first).value == "token-2"  # a refused token is replaced
    assert tokens.renew(first).value == "token-2"  # once: another thread's renewal is reused


def test_settings_for_xoauth2_are_checked_when_loaded(newsletter: Path) -> None:
    path = newsletter / "mailer.toml"
    text = path.read_text(encoding="utf-8")
    head, _smtp, tail = text.partition('username = "newsletter"\n')
    path.write_text(head + 'auth = "xoauth2"\nclient_id = "x"\n' + tail, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings(newsletter, environ={})
    (problem,) = caught.value.problems
    assert str(problem) == f"{path}: " + (
        'smtp: auth = "xoauth2": username: required, the mailbox to send as; '
        "token_url: required for the built-in OAuth client; scope: required for the built-in "
        'OAuth client (README: "Logging in with OAuth 2.0")'
    )
    path.write_text(head + 'client_secret = "s3cret"\n' + tail, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings(newsletter, environ={})
    assert "smtp.client_secret: secrets do not belong in files; remove it and set " in str(
        caught.value
    )
    assert "MAILER_OAUTH_CLIENT_SECRET" in str(caught.value) and "s3cret" not in str(caught.value)


def test_the_secrets_come_from_the_environment_only(newsletter: Path) -> None:
    path = newsletter / "mailer.toml"
    lines = (
        'auth = "xoauth2"\ntoken_url = "https://login.example/t"\nclient_id = "c"\nscope = "s"\n'
    )
    path.write_text(path.read_text().replace("[smtp]\n", "[smtp]\n" + lines), encoding="utf-8")
    settings = load_settings(newsletter, environ={"MAILER_OAUTH_REFRESH_TOKEN": "r-token"})
    refresh = settings.smtp.secret("refresh_token")
    assert refresh is not None and refresh.get_secret_value() == "r-token"
    assert settings.smtp.secret("client_secret") is None
    assert "r-token" not in repr(settings) + str(settings.model_dump())
    bare = load_settings(newsletter, environ={})  # composing needs no secret
    with pytest.raises(
        SettingsError, match=r"set MAILER_OAUTH_CLIENT_SECRET .* or MAILER_OAUTH_REFRESH_TOKEN"
    ):
        SmtpConnection(bare.smtp).open()
