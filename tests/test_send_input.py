"""Send and bad input around the list: it stops or warns, saying where and what to do."""

from __future__ import annotations

from pathlib import Path

from tests.sending import ISSUE, addresses, cli, make_folder
from tests.smtp_servers import MakeServer


def test_a_short_unsubscribe_secret_is_refused_and_never_shown(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(2))
    short = "only-thirty-one-characters-long"
    assert len(short) == 31
    for args in (("--yes",), ("--dry-run",)):
        code, out, err = cli("send", ISSUE, *args, env={"MAILER_UNSUBSCRIBE_SECRET": short})
        assert code == 1
        assert "MAILER_UNSUBSCRIBE_SECRET: shorter than 32 characters" in err
        assert 'python3 -c "import secrets; print(secrets.token_urlsafe(32))"' in err
        assert short not in out + err
        assert "Traceback" not in err
    assert server.received == []
    code, _out, err = cli("send", ISSUE, "--yes", env={"MAILER_UNSUBSCRIBE_SECRET": "x" * 32})
    assert code == 0, err
    assert len(server.received) == 2
