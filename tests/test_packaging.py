"""What a wheel ships: its own name, a licence, every import declared, data without symlinks."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from mailer.folder import SKELETON_DIR
from tests.conftest import REPO_DIR

PYPROJECT = tomllib.loads((REPO_DIR / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]


def _name(requirement: str) -> str:
    """Return a requirement's distribution name, normalised (PEP 503)."""
    found = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert found is not None, requirement
    return re.sub(r"[-_.]+", "-", found.group(0)).lower()


def _imported_top_level_names() -> set[str]:
    names: set[str] = set()
    for path in (REPO_DIR / "mailer").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_the_distribution_is_not_called_mailer_but_the_command_is() -> None:
    # "mailer" on the public index is an unrelated 2015 project: `pip install mailer` gets it.
    assert PROJECT["name"] == "newsletter-mailer"
    assert PROJECT["scripts"] == {"mailer": "mailer.cli:entry"}


def test_the_metadata_has_a_licence_and_urls() -> None:
    assert PROJECT["license"] == "MIT"
    assert (REPO_DIR / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert {"Homepage", "Source", "Issues"} <= set(PROJECT["urls"])


def test_every_imported_package_is_declared() -> None:
    declared = {_name(requirement) for requirement in PROJECT["dependencies"]}
    distributions = packages_distributions()
    undeclared = {}
    for name in sorted(_imported_top_level_names()):
        if name == "mailer" or name in sys.stdlib_module_names:
            continue
        owners = {_name(owner) for owner in distributions.get(name, [name])}
        if not owners & declared:
            undeclared[name] = owners
    assert undeclared == {}


def test_the_skeleton_has_no_symlinks_and_matches_the_repositorys_own_folder() -> None:
    """mailer init copies mailer/skeleton; the repository root is the same newsletter folder.

    The skeleton holds real files (a Windows checkout makes a symlink a text file, and a wheel
    built from it would ship that); the root keeps copies so that it works as a folder too.
    """
    links = [path for path in SKELETON_DIR.rglob("*") if path.is_symlink()]
    assert links == []
    differ = [
        str(path.relative_to(SKELETON_DIR))
        for path in sorted(SKELETON_DIR.rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        and (REPO_DIR / path.relative_to(SKELETON_DIR)).read_bytes() != path.read_bytes()
    ]
    assert differ == [], (
        "the repository's copies differ from mailer/skeleton: edit both, e.g. "
        "cp -r layouts mailer.toml recipients.example.csv mailer/skeleton/"
    )
