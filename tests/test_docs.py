"""Docs that cannot drift: the settings file `mailer init` copies, and every command's help."""

from __future__ import annotations

import re
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
import typer
from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo
from typer.core import TyperGroup
from typer.testing import CliRunner

from mailer import config
from mailer.cli import app
from mailer.folder import SETTINGS_FILE, SKELETON_DIR, load_settings

SKELETON_SETTINGS_PATH = SKELETON_DIR / SETTINGS_FILE
# A commented-out setting, like `# timeout = 30` (prose comments never start `word =`).
_COMMENTED_KEY = re.compile(r"^(\s*)#\s*(?=\"?[A-Za-z0-9_-]+\"?\s*=)", re.MULTILINE)


def _table_model(annotation: Any) -> type[BaseModel] | None:
    """Return the model behind a field that is a TOML table (`Smtp`, `Smtp | None`), else None."""
    candidates = [annotation]
    if get_origin(annotation) in (Union, types.UnionType):
        candidates = list(get_args(annotation))
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _settings_fields(
    model: type[BaseModel], table: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], FieldInfo]]:
    """Yield each leaf field as (its key path in the file, e.g. ("smtp", "timeout"), its info)."""
    for name, field in model.model_fields.items():
        key = (*table, field.alias or name)
        nested = _table_model(field.annotation)
        if nested is not None:
            yield from _settings_fields(nested, key)
        else:
            yield key, field


def _keys(data: dict[str, Any], table: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Return the key paths of parsed TOML, tables included."""
    found = set()
    for key, value in data.items():
        found.add((*table, key))
        if isinstance(value, dict):
            found |= _keys(value, (*table, key))
    return found


def _uncommented(text: str) -> str:
    """Return the settings text with every commented-out setting switched on."""
    return _COMMENTED_KEY.sub(r"\1", text)


def _env_variable(key: tuple[str, ...]) -> str:
    """Return the variable a secret comes from: ("smtp", "password") -> MAILER_SMTP_PASSWORD."""
    return "MAILER_" + "_".join(key).upper()


def _undocumented(model: type[BaseModel], text: str) -> list[str]:
    """Return what the settings text fails to say about model's fields, one line each."""
    documented = _keys(tomllib.loads(_uncommented(text)))
    problems = []
    for key, field in _settings_fields(model):
        dotted = ".".join(key)
        if field.exclude:
            if key in documented:
                problems.append(f"{dotted}: a secret; remove it, the file must not invite it")
            if _env_variable(key) not in text:
                problems.append(f"{dotted}: a secret; say it comes from {_env_variable(key)}")
        elif key not in documented:
            problems.append(f"{dotted}: add it under its table, set or as `# {key[-1]} = ...`")
    return problems


def _load(folder: Path, text: str) -> config.Settings:
    """Load text as a newsletter folder's settings, ignoring the environment."""
    folder.mkdir()
    (folder / SETTINGS_FILE).write_text(text, encoding="utf-8")
    return load_settings(folder, environ={})


def _value(settings: BaseModel, key: tuple[str, ...]) -> Any:
    """Return the value at a key path, following aliases back to field names."""
    value: Any = settings
    for part in key:
        fields = type(value).model_fields
        name = next((n for n, f in fields.items() if (f.alias or n) == part), part)
        value = getattr(value, name)
    return value


def test_the_skeleton_settings_document_every_setting() -> None:
    text = SKELETON_SETTINGS_PATH.read_text(encoding="utf-8")
    assert _undocumented(config.Settings, text) == []


def test_a_setting_added_later_without_documentation_is_caught() -> None:
    class LaterSmtp(config.Smtp):
        keepalive: int = 5

    class LaterSettings(config.Settings):
        smtp: LaterSmtp = LaterSmtp()
        footer_note: str | None = None
        api_token: str | None = Field(default=None, exclude=True)

    text = SKELETON_SETTINGS_PATH.read_text(encoding="utf-8")
    known = _undocumented(config.Settings, text)
    assert [problem for problem in _undocumented(LaterSettings, text) if problem not in known] == [
        "smtp.keepalive: add it under its table, set or as `# keepalive = ...`",
        "footer_note: add it under its table, set or as `# footer_note = ...`",
        "api_token: a secret; say it comes from MAILER_API_TOKEN",
    ]


def test_the_skeleton_settings_load_as_they_are(tmp_path: Path) -> None:
    text = SKELETON_SETTINGS_PATH.read_text(encoding="utf-8")
    tomllib.loads(text)
    settings = _load(tmp_path / "as-is", text)
    assert settings.name


def test_every_commented_setting_loads_and_shows_its_default(tmp_path: Path) -> None:
    text = SKELETON_SETTINGS_PATH.read_text(encoding="utf-8")
    set_keys = _keys(tomllib.loads(text))
    switched_on = _load(tmp_path / "uncommented", _uncommented(text))
    for key, field in _settings_fields(config.Settings):
        default = field.get_default(call_default_factory=True)
        if key in set_keys or field.exclude or default is None:
            continue  # set, secret, or an example of something off by default
        assert _value(switched_on, key) == default, f"{'.'.join(key)}: the comment's value"


def _command_paths(command: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Yield the argument path of every command, the app itself first: (), ("send",), ..."""
    yield path
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from _command_paths(sub, (*path, name))


COMMAND_PATHS = list(_command_paths(typer.main.get_command(app)))
runner = CliRunner()
# A Python type shown as a metavar: <list[str]>, LIST[STR], <Path>, str | None, <Optional...
_PYTHON_TYPE = re.compile(
    r"\b[A-Za-z_]\w*\[[A-Za-z_][\w ,|.\[\]]*\]"
    r"|\b\w+\s*\|\s*None\b|\bNone\s*\|"
    r"|<(?:list|dict|tuple|set|frozenset)\b"
    r"|\b(?:Path|PosixPath|Optional|Union)\b"
)


def _help(path: tuple[str, ...]) -> str:
    """Return `mailer ... --help` for the command at path; check it exits 0."""
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_commands_are_found() -> None:
    assert {("init",), ("send",), ("send-due",)} <= set(COMMAND_PATHS)


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda path: " ".join(("mailer", *path)))
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    assert "Example" in _help(path)


def test_no_help_shows_a_python_type_as_a_metavar() -> None:
    shown = [
        f"mailer {' '.join(path)}: {line.strip()}"
        for path in COMMAND_PATHS
        for line in _help(path).splitlines()
        if _PYTHON_TYPE.search(line)
    ]
    assert not shown, "\n".join(shown)


def test_the_python_type_check_sees_what_typer_shows() -> None:
    for bad in ["  --test <list[str]>", "  issues... LIST[PATH]", "  --out <Path>", "str | None"]:
        assert _PYTHON_TYPE.search(bad), bad
    for good in ["Usage: mailer [OPTIONS] COMMAND [ARGS]...", "  --out <path>  [default: .]"]:
        assert not _PYTHON_TYPE.search(good), good
    assert not _PYTHON_TYPE.search("issues/12.yaml:14:5: blocks[2].items[0].date: not a date")
