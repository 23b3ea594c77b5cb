"""`mailer inbox --imap` against a real Dovecot (Debian's dovecot-imapd) on a loopback port."""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.sending import ISSUE, cli, make_folder
from tests.smtp_servers import HOST, MakeServer, ServerCA, free_port, wait_until
from tests.test_inbox import BOUNCED, RECIPIENTS, fixture_bytes, suppressed

DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
)
# In CI (.ci/run installs it) a missing Dovecot fails the tests instead of skipping them.
_REQUIRED = os.environ.get("MAILER_REQUIRE_DOVECOT") == "1"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        DOVECOT is None and not _REQUIRED,
        reason="Dovecot is not installed (apt-get install dovecot-imapd)",
    ),
]
USER, PASSWORD = "bounces", "imap-test-password"
CONFIG = """
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
instance_name = mailer-test-{port}
protocols = imap
listen = {host}
ssl = required
ssl_cert = <{dir}/cert.pem
ssl_key = <{dir}/key.pem
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/home/%u
}}
mail_location = maildir:~/Maildir
first_valid_uid = 1
default_internal_user = {internal}
default_login_user = {login}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class Dovecot:
    """A running Dovecot with one user, reachable over implicit TLS."""

    port: int
    ca_file: Path

    def client(self) -> imaplib.IMAP4_SSL:
        """Log in as the test user, as a mail program would."""
        context = ssl.create_default_context(cafile=self.ca_file)
        imap = imaplib.IMAP4_SSL(HOST, self.port, ssl_context=context, timeout=10)
        imap.login(USER, PASSWORD)
        return imap

    def deliver(self, messages: list[bytes]) -> None:
        """Put messages in INBOX."""
        imap = self.client()
        for data in messages:
            assert imap.append("INBOX", None, None, data)[0] == "OK"
        imap.logout()

    def count(self, folder: str) -> int:
        """Return how many messages a folder holds (0 when it does not exist)."""
        imap = self.client()
        status, data = imap.select(f'"{folder}"', readonly=True)
        imap.logout()
        return int(data[0] or 0) if status == "OK" and isinstance(data[0], bytes) else 0


@pytest.fixture
def dovecot(smtp_test_ca: ServerCA) -> Iterator[Dovecot]:
    """Start Dovecot on a free loopback port with a test user and an empty Maildir."""
    assert DOVECOT is not None, "MAILER_REQUIRE_DOVECOT=1 but dovecot is not installed"
    # Dovecot's processes run as its own users: a short, world-readable folder of our own
    # (pytest's tmp_path is private to root, and a socket path must stay short).
    base = Path(tempfile.mkdtemp(prefix="dc-"))
    base.chmod(0o755)
    if os.geteuid() == 0:
        internal, login = "dovecot", "dovenull"
    else:
        internal = login = pwd.getpwuid(os.getuid()).pw_name
    mail_user = pwd.getpwnam(internal)
    (base / "home" / USER / "Maildir").mkdir(parents=True)
    smtp_test_ca.server_cert.private_key_pem.write_to_path(str(base / "key.pem"))
    smtp_test_ca.server_cert.cert_chain_pems[0].write_to_path(str(base / "cert.pem"))
    (base / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n", encoding="utf-8")
    if os.geteuid() == 0:
        shutil.chown(base / "home", internal, internal)
        for path in (base / "home").rglob("*"):
            shutil.chown(path, internal, internal)
    port = free_port()
    config = base / "dovecot.conf"
    config.write_text(
        CONFIG.format(dir=base, port=port, host=HOST, uid=mail_user.pw_uid,
                      gid=mail_user.pw_gid, internal=internal, login=login),
        encoding="utf-8",
    )  # fmt: skip
    subprocess.run([DOVECOT, "-c", str(config)], check=True, timeout=30)
    try:
        server = Dovecot(port, smtp_test_ca.ca_file)
        assert wait_until(lambda: _answers(server), timeout=10), (base / "dovecot.log").read_text()
        yield server
    finally:
        subprocess.run([DOVECOT, "-c", str(config), "stop"], check=False, timeout=30)
        shutil.rmtree(base, ignore_errors=True)


def _answers(server: Dovecot) -> bool:
    try:
        server.client().logout()
    except (OSError, imaplib.IMAP4.error):
        return False
    return True


def with_inbox(folder: Path, dovecot: Dovecot, extra: str = "") -> None:
    """Point the folder's [inbox] settings at the test Dovecot."""
    settings = folder / "mailer.toml"
    text = settings.read_text(encoding="utf-8")
    text = text if "\n[inbox]\n" in text else text + "\n[inbox]\n"
    block = (
        f'[inbox]\nhost = "{HOST}"\nport = {dovecot.port}\nsecurity = "ssl"\n'
        f'username = "{USER}"\nca_file = "{dovecot.ca_file}"\ntimeout = 10\n{extra}'
    )
    settings.write_text(text.replace("\n[inbox]\n", "\n" + block, 1), encoding="utf-8")


def test_imap_processes_moves_and_never_counts_twice(
    isolated: Path, make_smtp_server: MakeServer, dovecot: Dovecot
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, RECIPIENTS)
    assert cli("send", ISSUE, "--yes")[0] == 0
    with_inbox(isolated, dovecot)
    dovecot.deliver(fixture_bytes())
    env = {"MAILER_INBOX_PASSWORD": PASSWORD}

    code, out, err = cli("inbox", "--imap", "--dry-run", env=env)
    assert code == 0, err
    assert dovecot.count("INBOX") == 9 and not (isolated / "suppressed.csv").exists()

    code, out, err = cli("inbox", "--imap", env=env)
    assert code == 0, err
    assert "imap:INBOX: 9 new message(s)" in out
    assert suppressed(isolated) == BOUNCED
    assert dovecot.count("INBOX") == 0
    assert dovecot.count("mailer-processed") == 9  # moved, never deleted

    dovecot.deliver(fixture_bytes()[:2])  # the same reports again, e.g. a second copy
    code, out, err = cli("inbox", "--imap", env=env)
    assert code == 0, err
    assert "0 new message(s); 2 processed before" in out
    assert dovecot.count("INBOX") == 0 and dovecot.count("mailer-processed") == 11


def test_imap_errors_name_the_server_and_what_to_do(newsletter: Path, dovecot: Dovecot) -> None:
    with_inbox(newsletter, dovecot)
    code, _out, err = cli("inbox", "--imap")
    assert code == 1 and "MAILER_INBOX_PASSWORD" in err

    code, _out, err = cli("inbox", "--imap", env={"MAILER_INBOX_PASSWORD": "wrong-one"})
    assert code == 4 and f"{HOST}:{dovecot.port}: login refused" in err, err
    assert "wrong-one" not in err and "Traceback" not in err

    text = (newsletter / "mailer.toml").read_text(encoding="utf-8")
    (newsletter / "mailer.toml").write_text(text.replace("ca_file", "# ca_file"), "utf-8")
    code, _out, err = cli("inbox", "--imap", env={"MAILER_INBOX_PASSWORD": PASSWORD})
    assert code == 4 and "TLS certificate check failed" in err and "ca_file" in err, err
