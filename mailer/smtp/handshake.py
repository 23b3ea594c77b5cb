"""Open an SMTP session: refuse unsafe settings, connect, start TLS and log in."""

from __future__ import annotations

import contextlib
import ipaddress
import smtplib
import socket
import ssl
import threading

from mailer.config import Smtp
from mailer.errors import DeliveryError, SettingsError
from mailer.smtp.replies import reply_text

_LOOPBACK_NAMES = {"localhost", "localhost."}
HANDSHAKE_STEPS = 4  # connect and greeting, EHLO, STARTTLS, AUTH: each within smtp.timeout


def open_session(settings: Smtp, where: str, local_hostname: str | None) -> smtplib.SMTP:
    """Connect, secure and log in; raise DeliveryError saying where and what to do."""
    _check_policy(settings, where)
    context = None if settings.security == "none" else _tls_context(settings)
    return _handshake(settings, where, local_hostname, context)


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
    if settings.password is None:
        raise SettingsError(
            f'{where}: smtp.username is "{settings.username}" (mailer.toml [smtp]) but no '
            "password is set; set MAILER_SMTP_PASSWORD, or remove the username"
        )
    if settings.security == "none" and not local:
        raise SettingsError(
            f"{where}: refusing to send the password in plain text; "
            'use security = "starttls" or "ssl"'
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
    settings: Smtp, where: str, local_hostname: str | None, context: ssl.SSLContext | None
) -> smtplib.SMTP:
    """Connect, greet, start TLS and log in within a deadline; failures are DeliveryErrors."""
    smtp = _client(settings, local_hostname, context)
    # smtplib keeps the host its constructor was given for TLS's server_hostname; ours
    # connects later (after the deadline is armed), so set it as the constructor would.
    setattr(smtp, "_host", settings.host)  # noqa: B010
    # Debug output would print the AUTH exchange, and with it the password.
    smtp.set_debuglevel(0)
    # A socket timeout bounds each read; a server trickling its greeting a byte at a time
    # would stretch the handshake without end, so the whole of it has a deadline too.
    deadline = HANDSHAKE_STEPS * settings.timeout
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
            _login(smtp, settings, where)
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


def _login(smtp: smtplib.SMTP, settings: Smtp, where: str) -> None:
    """Log in when a username is set; _check_policy has made sure this is safe."""
    username, password = settings.username, settings.password
    if username is None or password is None:
        return
    if not smtp.has_extn("auth"):
        raise DeliveryError(
            f"{where}: the server does not offer AUTH, but smtp.username is "
            f'"{username}"; remove the username or ask the administrator'
        )
    problem: str | None = None
    try:
        smtp.login(username, password.get_secret_value())
    except UnicodeEncodeError:
        # smtplib sends AUTH PLAIN/LOGIN as ASCII; say so without echoing anything.
        problem = (
            "the username or password has non-ASCII characters, which SMTP AUTH cannot "
            "carry here; ask the administrator for an ASCII password"
        )
    except smtplib.SMTPAuthenticationError as err:
        problem = (
            f'login refused for "{username}" ({err.smtp_code}); '
            "check MAILER_SMTP_USERNAME and MAILER_SMTP_PASSWORD"
        )
    except smtplib.SMTPException as err:
        offered = smtp.esmtp_features.get("auth", "").strip() or "nothing"
        problem = f"login failed ({err}; the server offers {offered}); ask the administrator"
    except OSError as err:
        problem = f"connection lost during login ({err}); try again later"
    finally:
        # smtplib keeps the credentials on the client for its auth callbacks; drop them.
        smtp.user = smtp.password = ""
    if problem is not None:
        # Raised outside the except block on purpose: the smtplib frames in a chained
        # traceback hold the password as a local variable.
        raise DeliveryError(f"{where}: {problem}")


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
