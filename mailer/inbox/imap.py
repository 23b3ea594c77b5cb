"""The return mailbox over IMAP: TLS verified, log in, read a folder, move what was processed.

The login is a seam: Login is any callable that authenticates an open, secured connection.
Password login (LOGIN, the password from MAILER_INBOX_PASSWORD) is the one there is. OAuth 2.0
(XOAUTH2, once the relay settings have their token machinery) plugs in as another Login that
calls `imap.authenticate("XOAUTH2", ...)` with a fresh access token; nothing else changes.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType

from mailer.config import Inbox, Smtp
from mailer.errors import DeliveryError, SettingsError
from mailer.smtp import Tokens, token_source

Login = Callable[[imaplib.IMAP4, str], None]  # (connection, "host:port") -> None or raise
_LOOPBACK = re.compile(r"^(localhost\.?|127(\.\d{1,3}){3}|::1|\[::1\])$", re.IGNORECASE)
_BATCH = 50  # messages fetched per round trip


def password_login(settings: Inbox) -> Login:
    """Return the LOGIN for [inbox] username and MAILER_INBOX_PASSWORD; check both are set."""
    username, password = settings.username, settings.password
    if username is None:
        raise SettingsError("mailer.toml [inbox]: no username; set inbox.username")
    if password is None:
        raise SettingsError(
            f'mailer.toml [inbox]: username is "{username}" but no password is set; '
            "set MAILER_INBOX_PASSWORD"
        )

    def login(imap: imaplib.IMAP4, where: str) -> None:
        problem = None
        try:
            imap.login(username, password.get_secret_value())
        except UnicodeEncodeError:
            problem = "the username or password is not ASCII, which IMAP LOGIN cannot carry"
        except imaplib.IMAP4.error as err:
            problem = f'login refused for "{username}" ({_said(err)}); check MAILER_INBOX_PASSWORD'
        if problem is not None:  # raised here, not in the except: its frames hold the password
            raise DeliveryError(f"{where}: {problem}")

    return login


def oauth_login(settings: Inbox, smtp: Smtp) -> Login:
    """Return an XOAUTH2 login with a token from the relay's OAuth settings ([smtp] auth)."""
    username = settings.username or smtp.username
    if username is None:
        raise SettingsError("mailer.toml [inbox]: no username; set inbox.username")
    tokens = Tokens(token_source(smtp))

    def login(imap: imaplib.IMAP4, where: str) -> None:
        token = tokens.get().value
        problem = None
        try:
            imap.authenticate(
                "XOAUTH2",
                lambda _challenge: f"user={username}\x01auth=Bearer {token}\x01\x01".encode(),
            )
        except imaplib.IMAP4.error as err:
            problem = f'XOAUTH2 login refused for "{username}" ({_said(err)}); check the token'
        if problem is not None:  # raised here, not in the except: its frames hold the token
            raise DeliveryError(f"{where}: {problem}")

    return login


def login_for(settings: Inbox, smtp: Smtp) -> Login:
    """Return the login [inbox] auth asks for: a password, or the relay's OAuth 2.0 token."""
    return oauth_login(settings, smtp) if settings.auth == "xoauth2" else password_login(settings)


class ImapMailbox:
    """One IMAP folder; done() moves messages to the processed folder (never deletes them)."""

    def __init__(
        self,
        settings: Inbox,
        login: Login | None = None,
        *,
        read_only: bool = False,
        smtp: Smtp | None = None,
    ) -> None:
        """Check the settings; login defaults to what [inbox] auth says (OAuth: with smtp's
        token settings), else a password login."""
        if settings.host is None:
            raise SettingsError(
                "mailer.toml: no [inbox] host; set inbox.host (and username), or read a "
                "mailbox on this machine with --maildir PATH or --mbox PATH"
            )
        self._settings = settings
        self._login = login or (login_for(settings, smtp) if smtp else password_login(settings))
        self._read_only = read_only
        self.where = f"{settings.host}:{settings.effective_port}"
        self.name = f"imap:{settings.folder}"
        self._imap: imaplib.IMAP4 | None = None

    def __enter__(self) -> ImapMailbox:
        self._imap = self._connect()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._imap is not None:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                self._imap.logout()  # the server may have gone first: nothing left to tidy
            self._imap = None

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """Yield every message in the folder, by UID, without marking it read."""
        imap = self._open()
        listed = self._ok(imap.uid("SEARCH", "ALL"), "SEARCH")
        uids = listed[0].split() if listed and isinstance(listed[0], bytes) else []
        for start in range(0, len(uids), _BATCH):
            batch = b",".join(uids[start : start + _BATCH]).decode("ascii")
            data = self._ok(imap.uid("FETCH", batch, "(UID BODY.PEEK[])"), "FETCH")
            for item in data:
                if isinstance(item, tuple):
                    uid = re.search(rb"UID (\d+)", item[0])
                    if uid:
                        yield uid.group(1).decode("ascii"), item[1]

    def done(self, ids: list[str]) -> None:
        """Move the messages to the processed folder: MOVE (RFC 6851), else COPY and expunge."""
        if not ids or self._read_only:
            return
        imap = self._open()
        folder = _quoted(self._settings.processed_folder)
        uids = ",".join(ids)
        if "MOVE" in self._capabilities(imap):
            self._ok(imap.uid("MOVE", uids, folder), "MOVE")
            return
        self._ok(imap.uid("COPY", uids, folder), "COPY")
        self._ok(imap.uid("STORE", uids, "+FLAGS.SILENT", r"(\Deleted)"), "STORE")
        if "UIDPLUS" in self._capabilities(imap):  # RFC 4315: expunge only these
            self._ok(imap.uid("EXPUNGE", uids), "EXPUNGE")
        else:
            self._ok(imap.expunge(), "EXPUNGE")

    def _open(self) -> imaplib.IMAP4:
        assert self._imap is not None, "use ImapMailbox in a with block"
        return self._imap

    def _connect(self) -> imaplib.IMAP4:
        settings, where = self._settings, self.where
        local = bool(_LOOPBACK.match(settings.host or ""))
        if settings.security == "none" and not local and not settings.allow_insecure:
            raise SettingsError(
                f'{where}: [inbox] security = "none" sends the password in plain text; it is '
                'only allowed for a loopback host (use "ssl" or "starttls")'
            )
        imap: imaplib.IMAP4 | None = None
        try:
            context = _tls_context(settings)
            host, port, timeout = settings.host or "", settings.effective_port, settings.timeout
            if settings.security == "ssl":
                imap = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=timeout)
            else:
                imap = imaplib.IMAP4(host, port, timeout=timeout)
                if settings.security == "starttls":
                    # RFC 3501 6.2.1 / RFC 8314: no STARTTLS means no login, never plain text.
                    if "STARTTLS" not in imap.capabilities:
                        raise DeliveryError(
                            f"{where}: the server does not offer STARTTLS; refusing to log in "
                            'in plain text (set [inbox] security = "ssl")'
                        )
                    imap.starttls(ssl_context=context)
            self._login(imap, where)
            self._ensure_folder(imap)
            self._ok(imap.select(_quoted(settings.folder), readonly=self._read_only), "SELECT")
            return imap
        except BaseException as err:
            if imap is not None:
                imap.shutdown()
            if isinstance(err, ssl.SSLCertVerificationError):
                raise DeliveryError(
                    f"{where}: TLS certificate check failed ({err.verify_message}); if the "
                    "server uses a private CA, set [inbox] ca_file to its certificate (PEM)"
                ) from err
            if isinstance(err, socket.gaierror):
                raise DeliveryError(
                    f"{where}: cannot resolve the host name; check inbox.host"
                ) from err
            if isinstance(err, (ssl.SSLError, OSError, imaplib.IMAP4.error)):
                raise DeliveryError(
                    f"{where}: cannot connect ({_said(err)}); check [inbox] host, port and "
                    "security, and the network"
                ) from err
            raise

    def _ensure_folder(self, imap: imaplib.IMAP4) -> None:
        """Create the processed folder when it is missing (its name is ours to make)."""
        if self._read_only:
            return
        status, _data = imap.create(_quoted(self._settings.processed_folder))
        # NO [ALREADYEXISTS] (RFC 5530) is the usual answer from the second run on.
        del status

    def _capabilities(self, imap: imaplib.IMAP4) -> set[str]:
        # After login the server may offer more (MOVE, UIDPLUS): ask again.
        data = self._ok(imap.capability(), "CAPABILITY")
        return set(b" ".join(d for d in data if isinstance(d, bytes)).decode().upper().split())

    def _ok(self, reply: tuple[str, Sequence[object]], command: str) -> list[object]:
        status, data = reply
        if status != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise DeliveryError(f"{self.where}: {command} refused ({status} {text}); "
                                "check [inbox] folder and processed_folder")  # fmt: skip
        return list(data)


def _tls_context(settings: Inbox) -> ssl.SSLContext | None:
    """Return a verifying context (CERT_REQUIRED, host names checked), as the SMTP side does."""
    if settings.security == "none":
        return None
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as err:
        raise SettingsError(
            f"inbox.ca_file: cannot load {settings.ca_file} ({err}); point it at the CA "
            "certificate (PEM) that signed the server's certificate"
        ) from err


def _quoted(folder: str) -> str:
    """Return a folder name as an IMAP quoted string (imaplib sends it as it is)."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _said(err: BaseException) -> str:
    text = str(err)
    if isinstance(err, imaplib.IMAP4.error) and text.startswith("b'"):
        text = text[2:-1]
    return text or type(err).__name__
