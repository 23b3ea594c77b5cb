"""Shared fixtures: every test runs in its own newsletter folder with no MAILER_* variables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parent.parent
# Fixtures shared by many modules: real SMTP servers (and a trickling one), and a real
# headless Chromium.
pytest_plugins = ["tests.smtp_servers", "tests.smtp_trickle", "tests.browser"]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run in an empty folder, free of the developer's MAILER_* variables."""
    for name in list(os.environ):
        if name.startswith("MAILER_"):
            monkeypatch.delenv(name)
    folder = tmp_path / "newsletter"
    folder.mkdir()
    monkeypatch.chdir(folder)
    yield folder


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add --update-golden: rewrite tests/golden/ from the current output."""
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files in tests/golden/ (review them in a browser first)",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """Say whether this run rewrites golden files."""
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def newsletter(isolated: Path) -> Path:
    """Return the isolated folder, set up as a newsletter with the repository's settings."""
    (isolated / "mailer.toml").write_text(
        (REPO_DIR / "mailer.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (isolated / "issues").mkdir()
    return isolated
