"""Read mailer.toml, apply the MAILER_* environment variables, and name the line of a problem."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mailer.config.models import OAUTH_SECRETS, Settings
from mailer.errors import Problem, SettingsError

_ENV_OVERRIDES: dict[str, str] = {
    "MAILER_SMTP_HOST": "host",
    "MAILER_SMTP_PORT": "port",
    "MAILER_SMTP_SECURITY": "security",
    "MAILER_SMTP_USERNAME": "username",
    "MAILER_SMTP_PASSWORD": "password",
}


def read_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read a settings file and apply the MAILER_SMTP_* variables; raise SettingsError."""
    env = dict(os.environ if environ is None else environ)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(
            f"{shown}: no settings file; run `mailer init` or pass --dir to your newsletter folder"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise SettingsError(f"{shown}: cannot read ({err})") from err
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SettingsError(f"{shown}: {err}; check the TOML syntax") from err
    smtp = dict(raw.get("smtp") or {})
    for key in ("password", *OAUTH_SECRETS):
        if key in smtp:
            variable = f"MAILER_{'SMTP' if key == 'password' else 'OAUTH'}_{key.upper()}"
            raise SettingsError(
                f"{shown}:{key_line(text, key)}: smtp.{key}: secrets do not belong in files; "
                f"remove it and set {variable}"
            )
    for variable, key in _ENV_OVERRIDES.items():
        if env.get(variable):
            smtp[key] = env[variable]
        elif key == "username" and variable in env:
            smtp[key] = None  # MAILER_SMTP_USERNAME= (empty): no login
    for key in OAUTH_SECRETS:
        if env.get(f"MAILER_OAUTH_{key.upper()}"):
            smtp[key] = env[f"MAILER_OAUTH_{key.upper()}"]
    raw["smtp"] = smtp
    inbox = raw.get("inbox")
    if isinstance(inbox, dict) and "password" in inbox:
        raise SettingsError(
            f"{shown}:{key_line(text, 'password')}: inbox.password: secrets do not belong in "
            "files; remove it and set MAILER_INBOX_PASSWORD"
        )
    if env.get("MAILER_INBOX_PASSWORD") and (inbox is None or isinstance(inbox, dict)):
        raw["inbox"] = {**(inbox or {}), "password": env["MAILER_INBOX_PASSWORD"]}
    if "unsubscribe_secret" in raw:
        raise SettingsError(
            f"{shown}:{key_line(text, 'unsubscribe_secret')}: unsubscribe_secret: secrets do "
            "not belong in files; remove it and set MAILER_UNSUBSCRIBE_SECRET"
        )
    if env.get("MAILER_UNSUBSCRIBE_SECRET"):
        raw["unsubscribe_secret"] = env["MAILER_UNSUBSCRIBE_SECRET"]
    try:
        return Settings.model_validate(raw)
    except ValidationError as err:
        problems = [_problem(shown, text, error, env) for error in err.errors()]
        raise SettingsError(f"{shown}: {len(problems)} problem(s)", problems) from None


def _problem(shown: str, text: str, error: Any, env: Mapping[str, str]) -> Problem:
    loc = tuple(str(part) for part in error["loc"])
    where = ".".join(loc)
    if loc and loc[0] == "smtp" and len(loc) > 1 and env.get(f"MAILER_SMTP_{loc[1].upper()}"):
        return Problem(f"MAILER_SMTP_{loc[1].upper()}", None, None, "", error["msg"])
    if loc == ("unsubscribe_secret",):  # only ever from the environment
        message = error["msg"].removeprefix("Value error, ")
        return Problem("MAILER_UNSUBSCRIBE_SECRET", None, None, "", message)
    line = key_line(text, loc[-1]) if loc else None
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "required; add it"
    elif error["type"] == "extra_forbidden":
        message = "unknown setting; check its spelling in the README"
    return Problem(shown, line, None, where, message)


def key_line(text: str, key: str) -> int | None:
    """Return the first line of TOML text that sets key (tomllib keeps no positions)."""
    pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=", re.MULTILINE | re.IGNORECASE)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None
