"""OAuth 2.0 access tokens for logging in to SMTP: from a command or a token endpoint, cached.

A send shares one `Tokens` among its connections (threads): one request at a time, and a
token kept until shortly before it expires (`expires_in`), so that a long run asks again
only when it outlives its token. A token is never logged or shown, and the errors raised
here never chain an exception whose frames or attributes hold a token or a secret.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import SecretStr

from mailer.config import Smtp
from mailer.errors import DeliveryError, SettingsError
from mailer.smtp.token_endpoint import post_form

log = logging.getLogger(__name__)

REFRESH_MARGIN = 60.0  # seconds: ask for a new token this long before the old one expires
UNKNOWN_LIFETIME = 300.0  # seconds to keep a token whose lifetime is not known (a command's)
# RFC 6750 2.1: b64token. Anything else (a second line, a control character) is refused
# before it can reach the SASL string, where \x01 separates the fields.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class LoginRefusedError(DeliveryError):
    """The server or the token endpoint refused the credentials; trying again is no use.

    Account lockout policies count every refused attempt, so a send makes one and stops.
    """


@dataclass(frozen=True)
class AccessToken:
    """An access token, when it was obtained and when to stop using it (time.monotonic)."""

    value: str = field(repr=False)
    obtained: float
    renew_at: float


class TokenSource(Protocol):
    """Where tokens come from: `where` names it in messages; fetch returns one and its life."""

    where: str

    def fetch(self) -> tuple[str, float | None]: ...


class Tokens:
    """The access token of one send, shared by its connections: one request at a time."""

    def __init__(self, source: TokenSource, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self._clock = clock
        self._lock = threading.Lock()
        self._token: AccessToken | None = None

    def get(self) -> AccessToken:
        """Return the cached token while it is fresh enough, else a new one."""
        with self._lock:
            token = self._token
            if token is not None and self._clock() < token.renew_at:
                return token
            return self._fetch()

    def renew(self, refused: AccessToken) -> AccessToken:
        """Return a token other than one a server refused (another thread may have one)."""
        with self._lock:
            token = self._token
            if token is not None and token is not refused and self._clock() < token.renew_at:
                return token
            return self._fetch()

    def _fetch(self) -> AccessToken:
        self._token = None
        value, lifetime = self.source.fetch()
        now = self._clock()
        life = UNKNOWN_LIFETIME if lifetime is None else max(lifetime, 0.0)
        # Shortly before expiry: a minute, or a quarter of a short life.
        self._token = AccessToken(value, now, now + life - min(REFRESH_MARGIN, life / 4))
        known = "unknown" if lifetime is None else f"{lifetime:.0f} s"
        log.debug("%s: got an access token (lifetime %s)", self.source.where, known)
        return self._token


def token_source(settings: Smtp) -> TokenSource:
    """Return the configured source: token_command, or the built-in client of token_url."""
    if settings.token_command is not None:
        return CommandTokens(settings.token_command, settings.timeout)
    return EndpointTokens(settings)


def _last_line(output: bytes) -> str:
    lines = [line.strip() for line in output.decode("utf-8", "replace").splitlines()]
    last = next((line for line in reversed(lines) if line), "nothing on stderr")
    return last if len(last) <= 300 else last[:300] + "..."


class CommandTokens:
    """Tokens printed by a command (as msmtp's passwordeval), run without a shell."""

    def __init__(self, command: str, timeout: float) -> None:
        self.where = f"token_command `{command}`"
        try:
            self._argv = shlex.split(command)
        except ValueError as err:
            raise SettingsError(
                f"smtp.token_command: not a command line ({err}); check its quotes"
            ) from None
        self._timeout = timeout

    def fetch(self) -> tuple[str, float | None]:
        """Run the command; return what it printed, checked to be one token."""
        problem = None
        try:
            done = subprocess.run(
                self._argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self._timeout,
                check=False,
            )
        except FileNotFoundError:
            problem = (
                f"{self._argv[0]} not found; give its full path (cron's PATH is short) and "
                "check it by running it yourself"
            )
        except subprocess.TimeoutExpired:
            problem = (
                f"did not finish within {self._timeout:g} s (smtp.timeout); check it by "
                "running it yourself"
            )
        except OSError as err:
            problem = f"could not start ({err.strerror or err}); check it by running it yourself"
        # Raised outside the except blocks: TimeoutExpired keeps what the command printed.
        if problem is not None:
            raise DeliveryError(f"{self.where}: {problem}")
        code = done.returncode
        if code != 0:
            how = f"exited {code}" if code > 0 else f"was killed by signal {-code}"
            raise DeliveryError(
                f"{self.where} {how}: {_last_line(done.stderr)}; check it by running it yourself"
            )
        token = done.stdout.decode("ascii", "replace").strip()
        if not _TOKEN.fullmatch(token):
            raise DeliveryError(
                f"{self.where} printed no access token (one line of letters, digits and "
                "-._~+/=); check it by running it yourself"
            )
        return token, None


# RFC 6749 5.2 error codes, and what to do about each.
_HINTS = {
    "invalid_client": "check client_id and MAILER_OAUTH_CLIENT_SECRET (the secret's value, "
    "not its ID; it may have expired)",
    "invalid_grant": "check client_id and the tenant or project in token_url",
    "invalid_scope": "check smtp.scope (Microsoft 365: https://outlook.office365.com/.default; "
    "Google: https://mail.google.com/)",
    "unauthorized_client": "the application may not use this grant; check its registration",
    "unsupported_grant_type": "the application may not use this grant; check its registration",
}


class EndpointTokens:
    """The built-in OAuth 2.0 client: client-credentials or refresh-token grant (RFC 6749)."""

    def __init__(self, settings: Smtp) -> None:
        assert settings.token_url and settings.client_id and settings.scope  # config checks
        self.where = settings.token_url
        self._client_id, self._scope = settings.client_id, settings.scope
        self._secret = settings.secret("client_secret")
        self._refresh = settings.secret("refresh_token")
        if self._secret is None and self._refresh is None:
            raise SettingsError(
                f"{self.where}: set MAILER_OAUTH_CLIENT_SECRET (client-credentials grant) or "
                "MAILER_OAUTH_REFRESH_TOKEN (refresh-token grant) in the environment"
            )
        self._timeout = settings.timeout
        # The system's CAs, and smtp.ca_file's as well: a private CA for the relay must not
        # stop the public token endpoint from being trusted.
        self._context = ssl.create_default_context()
        if settings.ca_file is not None:
            try:
                self._context.load_verify_locations(cafile=settings.ca_file)
            except (OSError, ssl.SSLError) as err:
                raise SettingsError(
                    f"smtp.ca_file: cannot load {settings.ca_file} ({err}); point it at a CA "
                    "certificate (PEM)"
                ) from err

    def fetch(self) -> tuple[str, float | None]:
        """Ask the token endpoint for an access token; return it and its lifetime."""
        form = {"client_id": self._client_id, "scope": self._scope}
        if self._refresh is not None:
            form |= {
                "grant_type": "refresh_token",
                "refresh_token": self._refresh.get_secret_value(),
            }
        else:
            form["grant_type"] = "client_credentials"
        if self._secret is not None:
            form["client_secret"] = self._secret.get_secret_value()
        answer = post_form(self.where, form, self._context, self._timeout)
        if isinstance(answer, str):
            raise DeliveryError(f"{self.where}: {answer}")
        status, body = answer
        data = _json_object(body)
        if status == 200:
            return self._token_from(data)
        if 300 <= status < 400:
            raise DeliveryError(
                f"{self.where}: {status}: a redirect; set token_url to the endpoint's own address"
            )
        error = str(data.get("error") or "")
        said = f"{status} {error}".strip()
        described = _description(data.get("error_description"))
        if described:
            said += f" ({described})"
        for secret in (self._secret, self._refresh):  # should an endpoint ever echo one
            if secret is not None:
                said = said.replace(secret.get_secret_value(), "***")
        if 400 <= status < 500 and status not in (408, 429):
            hint = _HINTS.get(error, "check token_url, client_id and scope")
            if error == "invalid_grant" and self._refresh is not None:
                hint = "the refresh token has expired or was revoked: set a new one in "
                hint += "MAILER_OAUTH_REFRESH_TOKEN"
            raise LoginRefusedError(f"{self.where}: {said}: {hint}")
        raise DeliveryError(f"{self.where}: {said}: the token service failed; try again later")

    def _token_from(self, data: dict[str, object]) -> tuple[str, float | None]:
        token, kind = data.get("access_token"), data.get("token_type", "Bearer")
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise DeliveryError(f"{self.where}: the answer has no access token; check token_url")
        if not isinstance(kind, str) or kind.lower() != "bearer":
            raise DeliveryError(
                f"{self.where}: a {kind} token, not a bearer token; check token_url"
            )
        refresh = data.get("refresh_token")
        if self._refresh is not None and isinstance(refresh, str) and refresh:
            # RFC 6749 6: a new refresh token may replace the old one (kept for this run).
            self._refresh = SecretStr(refresh)
        expires = data.get("expires_in")  # a number, or a string (Microsoft's v1 endpoint)
        try:
            lifetime = float(expires) if isinstance(expires, int | float | str) else None
        except ValueError:
            lifetime = None
        return token, lifetime


def _json_object(body: bytes) -> dict[str, object]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _description(value: object) -> str:
    """Return an error_description's first line (Microsoft's go on with trace ids)."""
    if not isinstance(value, str):
        return ""
    first = next((line.strip() for line in value.splitlines() if line.strip()), "")
    return first if len(first) <= 200 else first[:200] + "..."
