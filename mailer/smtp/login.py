"""Log in to an SMTP server: a password, or an OAuth 2.0 access token (XOAUTH2, OAUTHBEARER).

Account lockout policies count every refused attempt. smtplib's login() tries each mechanism
the server offers in turn, and every connection of a send would log in again; here a send
logs in one connection at a time with one mechanism, and a refusal is final for the send:
the connections after it raise the same error without trying.
"""

from __future__ import annotations

import contextlib
import json
import logging
import smtplib
import threading
import time
import weakref
from collections.abc import Iterator

from mailer.config import Smtp
from mailer.errors import DeliveryError
from mailer.smtp.oauth import AccessToken, LoginRefusedError, Tokens, token_source
from mailer.smtp.replies import reply_text

log = logging.getLogger(__name__)

# One mechanism is tried: over TLS (or on this machine) PLAIN is as good as any.
PASSWORD_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")
# XOAUTH2 (Google's, Microsoft's) first: both providers offer it, and it is the one they
# document; OAUTHBEARER (RFC 7628) when a server offers only that.
OAUTH_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")


class Login:
    """The logins of one send (one Smtp settings object): one at a time; a refusal is final."""

    def __init__(self, settings: Smtp, where: str) -> None:
        self._settings = weakref.ref(settings)  # the registry must not keep it alive
        self.where = where
        self.tokens = Tokens(token_source(settings)) if settings.auth == "xoauth2" else None
        self._lock = threading.Lock()
        self._refused: str | None = None
        self._fresh = False  # whether this turn's token was obtained for it

    @property
    def settings(self) -> Smtp:
        """Return the settings (alive: the connection logging in holds them)."""
        settings = self._settings()
        assert settings is not None
        return settings

    @contextlib.contextmanager
    def turn(self) -> Iterator[AccessToken | None]:
        """Wait for this connection's turn to log in; yield the access token to use, if any."""
        with self._lock:
            if self._refused is not None:
                raise LoginRefusedError(self._refused)
            try:
                began = time.monotonic()
                token = None if self.tokens is None else self.tokens.get()
                self._fresh = token is not None and token.obtained >= began
                yield token
            except LoginRefusedError as err:
                self._refused = str(err)
                raise

    def authenticate(self, smtp: smtplib.SMTP, token: AccessToken | None) -> None:
        """Log in on a connection that has said EHLO (after STARTTLS); raise if refused."""
        user = self.settings.username
        if not smtp.has_extn("auth"):
            raise DeliveryError(
                f'{self.where}: the server does not offer AUTH, but smtp.username is "{user}"; '
                "remove the username or ask the administrator"
            )
        offered = _offered(smtp)
        if token is None:
            mechanism = next((m for m in PASSWORD_MECHANISMS if m in offered), None)
            answer = _password(smtp, self.settings, mechanism)
        else:
            mechanism, answer = self._oauth(smtp, offered, token)
        if answer is None:
            log.debug("%s: logged in as %s (%s)", self.where, user, mechanism)
            return
        # Raised here, outside any except block: smtplib's frames hold the secret.
        if isinstance(answer, str):
            raise DeliveryError(f"{self.where}: {answer}")
        code, reply = answer
        if code < 500:
            raise DeliveryError(
                f"{self.where}: login failed for now ({code} {reply}); try again later"
            )
        if self.tokens is None:
            raise LoginRefusedError(
                f'{self.where}: login refused for "{user}" ({code}); check '
                "MAILER_SMTP_USERNAME and MAILER_SMTP_PASSWORD"
            )
        raise LoginRefusedError(
            f'{self.where}: login refused for "{user}" ({code} {reply}, {mechanism}); the '
            f"access token from {self.tokens.source.where} was not accepted: check that it is "
            'for this mailbox and its scope (README: "Logging in with OAuth 2.0")'
        )

    def _oauth(
        self, smtp: smtplib.SMTP, offered: list[str], token: AccessToken
    ) -> tuple[str | None, tuple[int, str] | str | None]:
        """Log in with XOAUTH2 or OAUTHBEARER; a kept token that is refused is renewed once."""
        assert self.tokens is not None
        mechanism = next((m for m in OAUTH_MECHANISMS if m in offered), None)
        if mechanism is None:
            return None, (
                f"the server offers AUTH {' '.join(offered)}, neither XOAUTH2 nor OAUTHBEARER; "
                'ask the administrator, or log in with auth = "password"'
            )
        answer = _sasl(smtp, mechanism, self._response(mechanism, token))
        if isinstance(answer, tuple) and answer[0] == 535 and not self._fresh:
            # A token kept from earlier may have expired early or been revoked: one more try,
            # with a new token. A token obtained for this login that is refused is final.
            log.debug("%s: a kept access token was refused; getting a new one", self.where)
            token = self.tokens.renew(token)
            answer = _sasl(smtp, mechanism, self._response(mechanism, token))
        return mechanism, answer

    def _response(self, mechanism: str, token: AccessToken) -> str:
        user = self.settings.username or ""
        if mechanism == "XOAUTH2":
            return f"user={user}\x01auth=Bearer {token.value}\x01\x01"
        # RFC 7628 3.1 with the GS2 header of RFC 5801 (a saslname escapes "=" and ",").
        name = user.replace("=", "=3D").replace(",", "=2C")
        host, port = self.settings.host, self.settings.effective_port
        return f"n,a={name},\x01host={host}\x01port={port}\x01auth=Bearer {token.value}\x01\x01"


def _offered(smtp: smtplib.SMTP) -> list[str]:
    return smtp.esmtp_features.get("auth", "").upper().split()


def _sasl(smtp: smtplib.SMTP, mechanism: str, response: str) -> tuple[int, str] | str | None:
    """Run one AUTH exchange: None if accepted, (code, reply) if refused, else the problem."""
    challenges: list[bytes] = []

    def answer(challenge: bytes | None = None) -> str:
        if challenge is None:
            return response
        challenges.append(challenge)
        # An error challenge (JSON) is answered so that the server can end with its 5xx:
        # RFC 7628 3.2.3 says a single %x01 for OAUTHBEARER; Google and Microsoft document
        # an empty response for XOAUTH2.
        return "\x01" if mechanism == "OAUTHBEARER" else ""

    try:
        smtp.auth(mechanism, answer, initial_response_ok=True)
    except smtplib.SMTPAuthenticationError as err:
        return err.smtp_code, _said(err.smtp_error, challenges)
    except UnicodeEncodeError:
        return (
            "smtp.username has non-ASCII characters, which SMTP AUTH cannot carry here; use "
            "the mailbox's ASCII address"
        )
    except smtplib.SMTPException as err:
        return f"login failed ({err}); ask the administrator"
    except OSError as err:
        return f"connection lost during login ({err}); try again later"
    return None


def _said(reply: bytes | str, challenges: list[bytes]) -> str:
    """Return the server's refusal, with the status of its error challenge (JSON) if any."""
    text = reply_text(reply)
    for challenge in challenges:
        try:
            status = json.loads(challenge).get("status")
        except (ValueError, AttributeError):
            continue
        if isinstance(status, str | int):
            text += f"; status {status}"
    return text


def _password(
    smtp: smtplib.SMTP, settings: Smtp, mechanism: str | None
) -> tuple[int, str] | str | None:
    """Log in with one mechanism: None if accepted, (code, reply) if refused, else why not."""
    username, password = settings.username, settings.password
    assert username is not None and password is not None  # checked before connecting
    if mechanism is None:
        offered = " ".join(_offered(smtp))
        return (
            f"login failed (the server offers AUTH {offered}, no password mechanism); "
            'ask the administrator, or log in with auth = "xoauth2"'
        )
    method = getattr(smtp, "auth_" + mechanism.lower().replace("-", "_"))  # as smtplib's login()
    smtp.user, smtp.password = username, password.get_secret_value()
    try:
        smtp.auth(mechanism, method, initial_response_ok=True)
    except smtplib.SMTPAuthenticationError as err:
        return err.smtp_code, reply_text(err.smtp_error)
    except UnicodeEncodeError:
        # smtplib sends AUTH PLAIN/LOGIN as ASCII; say so without echoing anything.
        return (
            "the username or password has non-ASCII characters, which SMTP AUTH cannot "
            "carry here; ask the administrator for an ASCII password"
        )
    except smtplib.SMTPException as err:
        return f"login failed ({err}); ask the administrator"
    except OSError as err:
        return f"connection lost during login ({err}); try again later"
    finally:
        # smtplib keeps the credentials on the client for its auth callbacks; drop them.
        smtp.user = smtp.password = ""
    return None


_LOGINS: dict[int, Login] = {}
_LOGINS_LOCK = threading.Lock()


def login_for(settings: Smtp, where: str) -> Login:
    """Return the Login shared by every connection made with this settings object.

    A send's connections (threads) share its settings object, so they share one token and
    one refusal; the entry goes when the settings object does.
    """
    with _LOGINS_LOCK:
        login = _LOGINS.get(id(settings))
        if login is None:
            login = Login(settings, where)  # raises SettingsError before anything is kept
            _LOGINS[id(settings)] = login
            weakref.finalize(settings, _LOGINS.pop, id(settings), None)
        return login
