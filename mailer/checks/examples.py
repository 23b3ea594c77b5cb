"""Settings still holding `mailer init`'s examples: a send with them reaches nobody, or lies.

The scaffold fills mailer.toml with a plausible organisation on `.example` domains (RFC 2606:
reserved, they never resolve) so that a new folder composes at once. Left unchanged, the
footer gives a made-up postal address and the From and unsubscribe addresses reach nobody.
`mailer check`, compose and the dry run warn; a real send refuses (refuse_example_values).
"""

from __future__ import annotations

import tomllib
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from mailer.checks.base import Finding
from mailer.config import Settings
from mailer.errors import SettingsError
from mailer.folder import SETTINGS_FILE, SKELETON_DIR

# RFC 2606 and RFC 6761: names that are never anyone's real domain.
RESERVED_TLDS = (".example", ".invalid", ".test", ".localhost")
RESERVED_DOMAINS = ("example.com", "example.org", "example.net")
_ADDRESSES = ("from_address", "reply_to", "unsubscribe_mailto")
_URLS = ("unsubscribe_url", "archive_url")
_TEXTS = ("organisation", "postal_address")
_KEYS = {"from_address": "from"}
_HINT = (
    "set your own in mailer.toml; with no website, delete unsubscribe_url and archive_url: "
    "readers then unsubscribe by mail (unsubscribe_mailto) and there is no web archive"
)
_LOOPBACK = ("localhost", "::1")


def is_example_domain(domain: str) -> bool:
    """Say whether a domain is reserved for examples (RFC 2606, RFC 6761)."""
    name = domain.lower().rstrip(".")
    return name.endswith(RESERVED_TLDS) or any(
        name == reserved or name.endswith("." + reserved) for reserved in RESERVED_DOMAINS
    )


def example_values(settings: Settings) -> list[tuple[str, str]]:
    """Return (key, value) for every setting still holding an example value."""
    found = []
    for field in _ADDRESSES:
        value = getattr(settings, field)
        if value and is_example_domain(value.rpartition("@")[2]):
            found.append((_KEYS.get(field, field), value))
    for field in _URLS:
        value = getattr(settings, field)
        if value and is_example_domain(urlsplit(value).hostname or ""):
            found.append((field, value))
    if is_example_domain(settings.list_id):
        found.append(("list_id", settings.list_id))
    sample = _scaffold_values()
    found += [(f, getattr(settings, f)) for f in _TEXTS if getattr(settings, f) == sample.get(f)]
    return found


def check_example_values(settings: Settings) -> list[Finding]:
    """Return one warning naming every setting still holding an example value."""
    found = example_values(settings)
    if not found:
        return []
    return [
        Finding(
            "warning",
            "settings",
            f"{SETTINGS_FILE}: {found[0][0]}",
            f"{_listed(found)} still hold mailer init's examples: addresses on .example "
            "domains reach nobody, and the footer shows a made-up organisation; a real send "
            "refuses them",
            _HINT,
        )
    ]


def refuse_example_values(settings: Settings) -> None:
    """Raise SettingsError for a real send with example values, unless to this machine.

    A relay on this machine (a test server, a local Postfix under test) may get anything;
    a real relay with a made-up From and postal address is a mistake, not a choice.
    """
    host = settings.smtp.host.strip("[]").lower()
    if host in _LOOPBACK or host.startswith("127."):
        return
    found = example_values(settings)
    if found:
        raise SettingsError(
            f"{SETTINGS_FILE}: {_listed(found)} still hold mailer init's examples; nothing "
            f"was sent. {_HINT[0].upper()}{_HINT[1:]} (a dry run shows the email as it is)"
        )


def _listed(found: list[tuple[str, str]]) -> str:
    return ", ".join(f'{key} ("{value}")' for key, value in found)


@cache
def _scaffold_values() -> dict[str, Any]:
    """Return the example settings `mailer init` writes (the skeleton's mailer.toml)."""
    try:
        return tomllib.loads((SKELETON_DIR / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):  # a broken install: nothing to compare
        return {}
