"""A layout's files: regular files inside its folder, never reached through a symbolic link.

Jinja's FileSystemLoader follows symlinks, so a layout could put any file the user can read
into an email (`blocks/text.mjml.j2 -> ~/.ssh/id_rsa`). This loader refuses a link anywhere
below the layout folder, and anything that is not a regular file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from jinja2 import BaseLoader, Environment, TemplateNotFound
from jinja2.loaders import split_template_path

from mailer.errors import TemplateError, shown_path

TEMPLATE_SUFFIX = ".j2"
# Windows has neither flag (nor FIFOs); there the lstat walk in get_source refuses links.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)
_READ_FLAGS |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


class LayoutLoader(BaseLoader):
    """Load templates from one layout folder, refusing symlinks and special files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        parts = split_template_path(template)  # refuses "..", as FileSystemLoader does
        if not parts:
            raise TemplateNotFound(template)
        path = self.directory
        for part in parts:
            path = path / part
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                raise TemplateNotFound(template) from None
            except OSError as err:
                raise TemplateError(f"{shown_path(path)}: cannot read ({err.strerror})") from err
            if stat.S_ISLNK(mode):
                raise TemplateError(
                    f"{shown_link(path)}: a symbolic link; a layout's files must be regular "
                    f"files inside {shown_path(self.directory)}: copy the file in instead"
                )
        source, mtime = _read(path)
        return source, str(path), lambda: _mtime(path) == mtime


def shown_link(path: Path) -> str:
    """Return a symlink's path as messages show paths (shown_path would show its target)."""
    return str(Path(shown_path(path.parent)) / path.name)


def layout_files(directory: Path) -> Iterator[Path]:
    """Yield the layout's template files, sorted, symlinks left out."""
    for path in sorted(directory.rglob(f"*{TEMPLATE_SUFFIX}")):
        if not path.is_symlink() and path.is_file():
            yield path


def _read(path: Path) -> tuple[str, float | None]:
    """Read a regular file: a link swapped in since the check is refused, a FIFO not waited for."""
    try:
        descriptor = os.open(path, _READ_FLAGS)
        with os.fdopen(descriptor, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise TemplateError(f"{shown_path(path)}: not a regular file; a template is a file")
            return file.read().decode("utf-8"), info.st_mtime
    except UnicodeDecodeError as err:
        raise TemplateError(f"{shown_path(path)}: not UTF-8 text; save it as UTF-8") from err
    except OSError as err:
        raise TemplateError(f"{shown_path(path)}: cannot read ({err.strerror})") from err


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None
