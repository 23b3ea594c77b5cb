"""The package is the pipeline: every import points down it, through each package's API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "mailer"
# Lowest first: a unit may import only from units in earlier layers (and from itself).
LAYERS: list[set[str]] = [
    {"errors", "values", "filelock"},
    {"addresses"},
    {"config"},
    {"folder"},
    {"runlog"},
    {"issue"},
    {"render"},
    {"recipients"},
    {"mime"},
    {"smtp"},
    {"ledger"},
    {"checks"},
    {"compose", "publish"},
    {"send"},
    {"inbox", "notify"},
    {"schedule", "scaffold"},
    {"cli"},
    {"__main__"},
]
MAX_LINES = 300


def module_name(path: Path) -> str:
    """Return the dotted name of a module file of the package."""
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Return the mailer modules a file imports, in functions too (not for type checking)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name == "mailer" or name.startswith("mailer.")}


def unit_of(name: str) -> str:
    """Return the stage a module belongs to: mailer.send.plan -> send."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "errors"  # mailer/__init__ holds only the version


def layer_of(unit: str) -> int:
    return next(number for number, layer in enumerate(LAYERS) if unit in layer)


MODULES = {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def test_every_module_belongs_to_a_layer() -> None:
    units = {unit_of(name) for name in MODULES}
    assert units <= set().union(*LAYERS), "add the new module to LAYERS, where it belongs"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down_the_pipeline_through_each_packages_api(name: str) -> None:
    unit = unit_of(name)
    for imported in imports_of(MODULES[name]):
        other = unit_of(imported)
        if other == unit:
            # Inside a package, modules import each other, never the package's own API
            # (which imports them: a cycle through __init__).
            assert imported != f"mailer.{unit}" or MODULES[name].name == "__init__.py", imported
            continue
        assert layer_of(other) < layer_of(unit), f"{name} imports {imported}: upward"
        if imported != "mailer":  # the package itself holds only __version__
            assert imported.count(".") == 1, f"{name} imports {imported}: use mailer.{other}'s API"


def test_no_import_cycles() -> None:
    graph = {name: imports_of(path) & MODULES.keys() for name, path in MODULES.items()}
    # A package's __init__ importing its own modules is its API, not a cycle.
    for name, path in MODULES.items():
        if path.name == "__init__.py":
            graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            pytest.fail("import cycle: " + " -> ".join([*trail[trail.index(name) :], name]))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_no_module_is_longer_than_the_house_limit() -> None:
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_only_package_apis_declare_all() -> None:
    facades = [
        name
        for name, path in MODULES.items()
        if path.name != "__init__.py" and "__all__" in path.read_text(encoding="utf-8")
    ]
    assert facades == []
