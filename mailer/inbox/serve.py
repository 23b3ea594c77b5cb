"""`mailer serve-unsubscribe`: the one-click unsubscribe endpoint (RFC 8058), behind a proxy.

POST ?token=... with `List-Unsubscribe=One-Click` in the form body: suppress, answer 200.
GET ?token=...: a page with a button that POSTs the same; a link scanner that follows every GET
unsubscribes nobody. A token that does not open (forged, cut short, another list's) gets a plain
400 page and changes nothing. A repeated POST answers 200 again and adds nothing. The list is
written by record_suppressions: under the folder lock if it comes within LOCK_WAIT, else queued.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from mailer.addresses import validate_address
from mailer.errors import MailerError
from mailer.folder import Newsletter
from mailer.inbox.suppress import record_suppressions, stamp
from mailer.mime import read_unsubscribe_token, verify_unsubscribe_token
from mailer.recipients import Suppression

log = logging.getLogger("mailer")
_MAX_BODY = 8192  # a one-click form is one short field; refuse to read a novel
_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em}}
button{{font:inherit;padding:.6em 1.2em;cursor:pointer}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""


def make_server(
    newsletter: Newsletter, host: str, port: int, *, now: Callable[[], datetime] | None = None
) -> ThreadingHTTPServer:
    """Return the endpoint's HTTP server, bound and ready for serve_forever()."""
    settings = newsletter.settings
    secret = settings.unsubscribe_secret
    if secret is None:
        raise MailerError(
            "MAILER_UNSUBSCRIBE_SECRET is not set: the endpoint reads the tokens it signed; "
            "set it to the same value the sends use"
        )
    key, list_id, name = secret.get_secret_value(), settings.list_id, settings.name
    clock = now or (lambda: datetime.now(UTC))

    class Handler(_Handler):
        def address(self, query: dict[str, list[str]]) -> str | None:
            token = (query.get("token") or [""])[0]
            found = read_unsubscribe_token(key, list_id, token)
            if found is None and "email" in query:  # a link from before tokens were opaque
                email = query["email"][0]
                if verify_unsubscribe_token(key, list_id, email, token):
                    found = email
            return found if found is not None and validate_address(found) is None else None

        def suppress(self, address: str) -> str:
            row = Suppression(address, "suppressed", "unsubscribe", "", stamp(clock()),
                              "one-click", "RFC 8058 POST")  # fmt: skip
            return record_suppressions(newsletter, [row])

    Handler.list_name = name
    Handler.language = settings.language
    try:
        server = _Server((host, port), Handler)
    except OSError as err:
        raise MailerError(
            f"{host}:{port}: cannot listen ({err.strerror}); pick another --port or --host"
        ) from err
    return server


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 resets connections when a provider's clicks come in a burst.
    request_queue_size = 128
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    server_version = "mailer-unsubscribe"
    sys_version = ""
    timeout = 15  # seconds a client may idle: a slow one cannot hold a thread for ever
    protocol_version = "HTTP/1.0"
    list_name = ""
    language = "en"

    def address(self, query: dict[str, list[str]]) -> str | None:
        raise NotImplementedError

    def suppress(self, address: str) -> str:
        raise NotImplementedError

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        if self.address(query) is None:
            self._refuse()
            return
        target = html.escape(self.path, quote=True)
        self._page(
            200,
            "Unsubscribe",
            f"<p>Stop receiving {html.escape(self.list_name)}?</p>"
            f'<form method="post" action="{target}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            "<button type=submit>Unsubscribe</button></form>",
        )

    def do_POST(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self._page(400, "Bad request", "<p>The request body is not a one-click form.</p>")
            return
        body = self.rfile.read(length).decode("utf-8", "replace")
        address = self.address(query)
        if address is None:
            self._refuse()
            return
        # RFC 8058 3.1: the body must say List-Unsubscribe=One-Click.
        if parse_qs(body).get("List-Unsubscribe") != ["One-Click"]:
            self._page(400, "Bad request", "<p>Send List-Unsubscribe=One-Click.</p>")
            return
        try:
            where = self.suppress(address)
        except MailerError as err:  # the disk, most likely: say so to the operator, not the web
            log.error("unsubscribe not recorded: %s", err)
            self._page(503, "Try again later", "<p>Please try again in a few minutes.</p>")
            return
        log.info("unsubscribed one address (%s)", where)  # no address in the log
        self._page(
            200, "Unsubscribed", f"<p>You will get no more {html.escape(self.list_name)}.</p>"
        )

    def _refuse(self) -> None:
        self._page(
            400,
            "Link not valid",
            "<p>This unsubscribe link is not valid. Use the link in the newsletter itself, or "
            "reply to it asking to be taken off the list.</p>",
        )

    def _page(self, status: int, title: str, body: str) -> None:
        data = _PAGE.format(lang=html.escape(self.language), title=title, body=body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        # The default prints the path, token and all; a token is a way back to an address.
        log.debug("%s", getattr(self, "requestline", "").split("?")[0])
