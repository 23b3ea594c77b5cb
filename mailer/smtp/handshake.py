"""Open an SMTP session: refuse unsafe settings, connect, start TLS and log in."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable

from mailer.config import Smtp
from mailer.errors import DeliveryError, SettingsError
from mailer.smtp.login import login_for
from mailer.smtp.replies import reply_text
from mailer.values import line_problem

_LOOPBACK_NAMES = {"localhost", "localhost."}
HANDSHAKE_STEPS = 4  # connect and greeting, EHLO, STARTTLS, AUTH: each within smtp.timeout
OAUTH_STEPS = 2  # and with a token refused: a new token, a second AUTH


def open_session(settings: Smtp, where: str, local_hostname: str | None) -> smtplib.SMTP:
    """Connect, secure and log in; raise DeliveryError saying where and what to do."""
    _check_policy(settings, where)
    context = None if settings.security == "none" else _tls_context(settings)
    if settings.username is None:
        return _handshake(settings, where, local_hostname, context, None)
    login = login_for(settings, where)
    # One login at a time; a token is fetched (or taken from the cache) before connecting.
    with login.turn() as token:
        log_in = functools.partial(login.authenticate, token=token)
        return _handshake(settings, where, local_hostname, context, log_in)


def _check_policy(settings: Smtp, where: str) -> None:
    """Refuse, before connecting, what the settings must not do (a settings error: exit 1)."""
    local = _is_loopback(settings.host)
    if settings.security == "none" and not local and not settings.allow_insecure:
        raise SettingsError(
            f'{where}: security = "none" sends in plain text; it is only allowed for '
            'a loopback host (use security = "starttls" or "ssl", or set allow_insecure)'
        )
    if settings.username is None:
        return
    oauth = settings.auth == "xoauth2"
    if settings.password is None and not oauth:
        also = ' (token_command and token_url need auth = "xoauth2")'
        raise SettingsError(
            f'{where}: smtp.username is "{settings.username}" (mailer.toml [smtp]) but no '
            "password is set; set MAILER_SMTP_PASSWORD, or remove the username"
            + (also if settings.token_command or settings.token_url else "")
        )
    problem = line_problem(settings.username) if oauth else None
    if problem:
        raise SettingsError(f"{where}: smtp.username: {problem}")
    if settings.security == "none" and not local:
        raise SettingsError(
            f"{where}: refusing to send the {'access token' if oauth else 'password'} in "
            'plain text; use security = "starttls" or "ssl"'
        )


def _tls_context(settings: Smtp) -> ssl.SSLContext:
    """Return a verifying client context: the system store, or the configured CA file."""
    ca_file = settings.ca_file
    try:
        # Hostname checks, CERT_REQUIRED and TLS 1.2 or later are the defaults here.
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as err:
        raise SettingsError(
            f"smtp.ca_file: cannot load {ca_file} ({err}); point it at the CA certificate "
            "(PEM) that signed the server's certificate"
        ) from err


def _client(
    settings: Smtp, local_hostname: str | None, context: ssl.SSLContext | None
) -> smtplib.SMTP:
    """Return an smtplib client, not yet connected."""
    if settings.security == "ssl":
        return smtplib.SMTP_SSL(
            local_hostname=local_hostname, timeout=settings.timeout, context=context
        )
    return smtplib.SMTP(local_hostname=local_hostname, timeout=settings.timeout)


def _cut(smtp: smtplib.SMTP, fired: threading.Event) -> None:
    """End a handshake that overran its deadline: a blocked read returns at once."""
    fired.set()
    sock = smtp.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _handshake(
    settings: Smtp,
    where: str,
    local_hostname: str | None,
    context: ssl.SSLContext | None,
    log_in: Callable[[smtplib.SMTP], None] | None,
) -> smtplib.SMTP:
    """Connect, greet, start TLS and log in within a deadline; failures are DeliveryErrors."""
    smtp = _client(settings, local_hostname, context)
    # smtplib keeps the host its constructor was given for TLS's server_hostname; ours
    # connects later (after the deadline is armed), so set it as the constructor would.
    setattr(smtp, "_host", settings.host)  # noqa: B010
    # Debug output would print the AUTH exchange, and with it the password or token.
    smtp.set_debuglevel(0)
    # A socket timeout bounds each read; a server trickling its greeting a byte at a time
    # would stretch the handshake without end, so the whole of it has a deadline too.
    steps = HANDSHAKE_STEPS + (OAUTH_STEPS if settings.auth == "xoauth2" else 0)
    deadline = steps * settings.timeout
    fired = threading.Event()
    watchdog = threading.Timer(deadline, _cut, (smtp, fired))
    watchdog.daemon = True
    watchdog.start()
    try:
        with contextlib.ExitStack() as on_failure:
            on_failure.callback(smtp.close)
            code, greeting = smtp.connect(settings.host, settings.effective_port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, greeting)
            _secure(smtp, settings, where, context)
            if log_in is not None:
                log_in(smtp)
            on_failure.pop_all()
            return smtp
    except (ssl.SSLError, smtplib.SMTPException, OSError) as err:
        if fired.is_set():
            raise DeliveryError(
                f"{where}: the connection, TLS and login took longer than {deadline:.0f} s "
                "(the server answers too slowly); try again later"
            ) from err
        raise _explain(err, where) from err
    finally:
        watchdog.cancel()


def _secure(smtp: smtplib.SMTP, settings: Smtp, where: str, context: ssl.SSLContext | None) -> None:
    """Greet, and start TLS when configured."""
    smtp.ehlo_or_helo_if_needed()
    if settings.security != "starttls":
        return
    # RFC 3207 4: never fall back to plain text when STARTTLS is missing; that is exactly
    # what a downgrade attacker would arrange.
    if not smtp.has_extn("starttls"):
        raise DeliveryError(
            f"{where}: the server does not offer STARTTLS; refusing to send in "
            'plain text (set security = "ssl" or ask the administrator)'
        )
    smtp.starttls(context=context)
    # RFC 3207 4.2: forget what was learnt before TLS and ask again.
    code, reply = smtp.ehlo()
    if code != 250:
        raise smtplib.SMTPHeloError(code, reply)


def _explain(err: Exception, where: str) -> DeliveryError:
    """Return a DeliveryError that says what failed on the way in and what to do."""
    if isinstance(err, smtplib.SMTPConnectError):
        return DeliveryError(
            f"{where}: the server refused the connection ({err.smtp_code} "
            f"{reply_text(err.smtp_error)}); try again later"
        )
    if isinstance(err, ssl.SSLCertVerificationError):
        return DeliveryError(
            f"{where}: TLS certificate check failed ({err.verify_message}); if the server "
            "uses a private CA, set smtp.ca_file to its certificate (PEM)"
        )
    if isinstance(err, ssl.SSLError):
        return DeliveryError(
            f"{where}: TLS handshake failed ({err.reason or err}); check that security "
            '("ssl" on port 465, "starttls" on 587) matches the port'
        )
    if isinstance(err, smtplib.SMTPResponseException):
        return DeliveryError(
            f"{where}: the server refused the handshake ({err.smtp_code} "
            f"{reply_text(err.smtp_error)}); try again later or ask the administrator"
        )
    if isinstance(err, socket.gaierror):
        return DeliveryError(
            f"{where}: cannot resolve the host name ({err.strerror}); check smtp.host"
        )
    return DeliveryError(
        f"{where}: cannot connect ({str(err) or type(err).__name__}); "
        "check smtp.host, smtp.port and the network"
    )


def _is_loopback(host: str) -> bool:
    """Return whether host names this machine without asking a resolver."""
    name = host.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
