"""OAuth 2.0 for tests: an HTTPS token endpoint and an SMTP server that demands its tokens.

Both are real servers on 127.0.0.1 that share a `TokenBook`: the endpoint issues tokens
into it (with the lifetime it tells the client, and the one the SMTP server enforces, which
may be shorter), and the SMTP server's XOAUTH2 and OAUTHBEARER mechanisms accept a token
only while the book does. Each records what it saw: grants, and logins with their tokens.
"""

from __future__ import annotations

import base64
import collections
import json
import secrets
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult

from tests.smtp_faults import Faults, FaultySMTP, Recorder
from tests.smtp_servers import HOST, SERVER_NAME, ServerCA, SmtpServer, _FaultyController, free_port

MAILBOX = "news@example.org"
SCOPE = "https://outlook.office365.com/.default"
CLIENT_ID = "mailer-test-client"
CLIENT_SECRET = "client-secret-value-Zq8"
REFRESH_TOKEN = "refresh-token-value-Xr4"
# Microsoft's answer to a wrong client secret (RFC 6749 5.2, with Entra's trace lines).
INVALID_CLIENT = {
    "error": "invalid_client",
    "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret "
    "being sent in the request is the client secret value.\r\nTrace ID: 0000\r\n"
    "Correlation ID: 1111\r\nTimestamp: 2026-01-01 00:00:00Z",
}


@dataclass
class Issued:
    """One token as the book knows it: when it stops working, and how many logins it has."""

    expires: float  # time.monotonic()
    uses: int | None  # logins left, None: any number


class TokenBook:
    """The tokens the endpoint issued and the SMTP server accepts (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, Issued] = {}
        self.issued: list[str] = []

    def issue(self, lifetime: float, uses: int | None = None) -> str:
        """Return a new token, about the size of Microsoft's (a JWT of ~1.5 KB)."""
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(1100) + "." + secrets.token_hex(8)
        with self._lock:
            self._tokens[token] = Issued(time.monotonic() + lifetime, uses)
            self.issued.append(token)
        return token

    def accept(self, token: str) -> bool:
        """Use up one login of the token; return whether it is (still) good."""
        with self._lock:
            issued = self._tokens.get(token)
            if issued is None or time.monotonic() >= issued.expires or issued.uses == 0:
                return False
            if issued.uses is not None:
                issued.uses -= 1
            return True


@dataclass
class Grant:
    """One token request as the endpoint received it (secrets reduced to whether they came)."""

    grant_type: str
    client_id: str
    scope: str
    client_secret: str | None
    refresh_token: str | None


@dataclass
class TokenEndpoint:
    """A running HTTPS token endpoint: its URL, what it does, and the grants it saw."""

    book: TokenBook
    url: str = ""
    expires_in: float = 3600.0  # what the answer says
    lifetime: float | None = None  # how long the SMTP server takes it (default: expires_in)
    uses: int | None = None  # logins each token is good for
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # answered first
    grants: list[Grant] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def answer(self, grant: Grant) -> tuple[int, dict[str, Any]]:
        """Return the status and JSON for a grant: a failure queued, a refusal or a token."""
        self.grants.append(grant)
        if self.failures:
            return self.failures.pop(0)
        if grant.client_id != CLIENT_ID:
            return 400, {"error": "unauthorized_client", "error_description": "Unknown app."}
        if grant.grant_type == "client_credentials" and grant.client_secret != CLIENT_SECRET:
            return 401, INVALID_CLIENT
        if grant.grant_type == "refresh_token" and grant.refresh_token != REFRESH_TOKEN:
            return 400, {"error": "invalid_grant", "error_description": "Token expired."}
        lifetime = self.expires_in if self.lifetime is None else self.lifetime
        token = self.book.issue(lifetime, self.uses)
        return 200, {"token_type": "Bearer", "expires_in": self.expires_in, "access_token": token}

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class _TokenHandler(BaseHTTPRequestHandler):
    endpoint: TokenEndpoint  # set on a subclass per server

    def do_POST(self) -> None:
        """Answer a token request (application/x-www-form-urlencoded, RFC 6749 4.4 and 6)."""
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("ascii"))
        value = {key: values[0] for key, values in form.items()}
        grant = Grant(
            value.get("grant_type", ""),
            value.get("client_id", ""),
            value.get("scope", ""),
            value.get("client_secret"),
            value.get("refresh_token"),
        )
        status, data = self.endpoint.answer(grant)
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep quiet: pytest shows stderr of failing tests, and this is noise."""


def start_token_endpoint(ca: ServerCA, book: TokenBook, **options: Any) -> TokenEndpoint:
    """Start an HTTPS token endpoint for 127.0.0.1 with a certificate from the test CA."""
    endpoint = TokenEndpoint(book, **options)
    handler = type("Handler", (_TokenHandler,), {"endpoint": endpoint})
    server = ThreadingHTTPServer((HOST, 0), handler)
    server.daemon_threads = True
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.server_cert.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    endpoint.server = server
    endpoint.url = f"https://{HOST}:{server.server_address[1]}/oauth2/v2.0/token"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return endpoint


@dataclass(frozen=True)
class Login:
    """One AUTH with a bearer token, as the SMTP server saw it."""

    mechanism: str
    user: str
    token: str
    accepted: bool
    fields: dict[str, str]  # OAUTHBEARER's host and port, XOAUTH2's nothing more
    answer_to_error: bytes | None = None  # what the client said to the error challenge


class OAuthRecorder(Recorder):
    """Record messages and logins; XOAUTH2 and OAUTHBEARER accept what the book accepts."""

    def __init__(self, book: TokenBook, mailbox: str = MAILBOX) -> None:
        super().__init__(Faults())
        self.book = book
        self.mailbox = mailbox
        self.bearer_logins: list[Login] = []

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """Google's and Microsoft's mechanism: user=...^Aauth=Bearer ...^A^A."""
        return await self._bearer(server, args, "XOAUTH2")

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        """RFC 7628: a GS2 header, then host, port and auth, separated by ^A."""
        return await self._bearer(server, args, "OAUTHBEARER")

    async def _bearer(self, server: SMTP, args: list[str], mechanism: str) -> AuthResult:
        raw = base64.b64decode(args[1]) if len(args) > 1 else await server.challenge_auth("")
        if raw is MISSING or not isinstance(raw, bytes):
            return AuthResult(success=False, handled=True)
        parts = raw.decode().split("\x01")
        fields = dict(part.split("=", 1) for part in parts[1:] if "=" in part)
        if mechanism == "XOAUTH2":
            user, auth = parts[0].removeprefix("user="), parts[1]
        else:
            header = parts[0].split(",")  # n,a=user,
            user = header[1].removeprefix("a=").replace("=2C", ",").replace("=3D", "=")
            auth = f"auth={fields.pop('auth', '')}"
        token = auth.removeprefix("auth=Bearer ")
        accepted = user == self.mailbox and self.book.accept(token)
        answer: bytes | None = None
        if not accepted:
            # RFC 7628 3.2.2 / Google's XOAUTH2 page: an error challenge of JSON first.
            status = "401" if mechanism == "XOAUTH2" else "invalid_token"
            error = {"status": status, "schemes": "bearer", "scope": SCOPE}
            said = await server.challenge_auth(json.dumps(error))
            answer = said if isinstance(said, bytes) else None
        self.bearer_logins.append(Login(mechanism, user, token, accepted, fields, answer))
        if accepted:
            return AuthResult(success=True, auth_data=user)
        return AuthResult(
            success=False, handled=False, message="535 5.7.3 Authentication unsuccessful"
        )


class OAuthSMTP(FaultySMTP):
    """FaultySMTP with room for a bearer token on the AUTH line (RFC 4954 4: 12288 octets)."""

    line_length_limit = 16384

    def __init__(self, handler: Recorder, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.command_size_limits = collections.defaultdict(lambda: 16384)


class _OAuthController(_FaultyController):
    def factory(self) -> OAuthSMTP:
        """Return the protocol for a new connection."""
        return OAuthSMTP(self.handler, **self.SMTP_kwargs)


def start_oauth_smtp_server(
    ca: ServerCA, book: TokenBook, *, offer: tuple[str, ...] = ("LOGIN", "XOAUTH2")
) -> SmtpServer:
    """Start a STARTTLS server offering these AUTH mechanisms (Exchange Online: LOGIN XOAUTH2)."""
    recorder = OAuthRecorder(book)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.server_cert.configure_cert(context)
    every = ("PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER")
    controller = _OAuthController(
        recorder,
        hostname=HOST,
        port=free_port(),
        server_hostname=SERVER_NAME,
        authenticator=recorder.authenticate,
        auth_require_tls=True,
        auth_exclude_mechanism=[m for m in every if m not in offer],
        tls_context=context,
        require_starttls=True,
    )
    controller.start()
    return SmtpServer(controller.port, recorder, controller, "starttls", ca.ca_file)
