"""SpamAssassin's local rules score a built message: no address in any URL (GB_CUSTOM_HTM_URI)."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote

import pytest

from mailer.mime import MessageFactory
from tests.test_message import NOW, SAM, factory, sample

SPAMASSASSIN = shutil.which("spamassassin")
_REQUIRED = os.environ.get("MAILER_REQUIRE_SPAMASSASSIN") == "1"
pytestmark = pytest.mark.skipif(
    SPAMASSASSIN is None and not _REQUIRED,
    reason="SpamAssassin is not installed (apt-get install spamassassin)",
)
_URL = re.compile(r"https?://[^\s\"'<>]+")


def score(message: bytes, home: Path) -> tuple[float, set[str]]:
    """Return SpamAssassin's score and rule names, local tests only (-L: no network)."""
    assert SPAMASSASSIN is not None, "MAILER_REQUIRE_SPAMASSASSIN=1 but it is not installed"
    result = subprocess.run(
        [SPAMASSASSIN, "-L", "-t"],
        input=message,
        capture_output=True,
        timeout=120,
        env={**os.environ, "HOME": str(home)},  # its user_prefs go here, not in ~
        check=True,
    )
    status = parse_status(result.stdout)
    found = re.search(r"score=(-?[\d.]+).*?tests=(\S*)", status, re.DOTALL)
    assert found is not None, status
    return float(found.group(1)), set(filter(None, found.group(2).split(",")))


def parse_status(output: bytes) -> str:
    """Return the X-Spam-Status header SpamAssassin added, unfolded."""
    header = re.search(rb"^X-Spam-Status: (.*?)\n(?=\S)", output, re.MULTILINE | re.DOTALL)
    assert header is not None, output[:500]
    return " ".join(header.group(1).decode().split())


def urls(data: bytes) -> list[str]:
    """Return every URL in the message as a reader's client sees it (headers and both parts)."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text = str(message["List-Unsubscribe"])
    text += "".join(str(part.get_content()) for part in message.iter_parts())
    return _URL.findall(text)


@pytest.mark.slow
def test_a_built_message_has_no_address_in_any_url_and_no_custom_uri_points(
    newsletter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, rendered = sample(newsletter)
    data = factory(config, rendered).build(SAM, now=NOW).data
    assert urls(data) and not [u for u in urls(data) if "sam" in u.lower() or "%40" in u]
    points, rules = score(data, tmp_path)
    assert "GB_CUSTOM_HTM_URI" not in rules, rules
    assert points < 2.0, rules

    # The same check sees the old links, which carried the address in clear.
    def old_links(self: MessageFactory, address_key: str) -> tuple[str, None]:
        return f"{config.unsubscribe_url}?email={quote(address_key, safe='')}&token=abc", None

    monkeypatch.setattr(MessageFactory, "_links", old_links)
    old = factory(config, rendered).build(SAM, now=NOW).data
    assert "GB_CUSTOM_HTM_URI" in score(old, tmp_path)[1]
