"""`[inbox] auth = "xoauth2"`: the IMAP login takes its token from the relay's OAuth settings."""

from __future__ import annotations

import base64
import imaplib
import socket
import sys
import threading
from pathlib import Path

from mailer.config import Inbox, Smtp
from mailer.inbox import login_for


def serve_one_imap(listener: socket.socket, heard: list[bytes]) -> None:
    """Answer one IMAP client: greet, take AUTHENTICATE XOAUTH2, record its SASL string."""
    conn, _ = listener.accept()
    with conn, conn.makefile("rwb") as wire:
        wire.write(b"* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] test server ready\r\n")
        wire.flush()
        while line := wire.readline():
            tag, command = line.strip().split(b" ", 2)[:2]
            if command.upper() == b"CAPABILITY":
                wire.write(b"* CAPABILITY IMAP4rev1 AUTH=XOAUTH2\r\n" + tag + b" OK done\r\n")
            elif command.upper() == b"AUTHENTICATE":
                wire.write(b"+ \r\n")
                wire.flush()
                heard.append(base64.b64decode(wire.readline().strip()))
                wire.write(tag + b" OK authenticated\r\n")
            else:
                wire.write(tag + b" OK\r\n")
            wire.flush()


def test_the_imap_login_sends_the_relays_oauth_token(tmp_path: Path) -> None:
    script = tmp_path / "token.py"
    script.write_text('print("the-access-token")\n', encoding="utf-8")
    smtp = Smtp.model_validate(
        {
            "username": "news@example.org",
            "auth": "xoauth2",
            "token_command": f"{sys.executable} {script}",
        }
    )
    inbox = Inbox(username="bounces@example.org", auth="xoauth2")
    heard: list[bytes] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        server = threading.Thread(target=serve_one_imap, args=(listener, heard), daemon=True)
        server.start()
        imap = imaplib.IMAP4("127.0.0.1", listener.getsockname()[1], timeout=5)
        try:
            login_for(inbox, smtp)(imap, "127.0.0.1")
        finally:
            imap.shutdown()
    assert heard == [b"user=bounces@example.org\x01auth=Bearer the-access-token\x01\x01"]
