"""Create a new newsletter folder from the skeleton that ships with mailer."""

from __future__ import annotations

import shutil
from pathlib import Path

from mailer.errors import MailerError
from mailer.folder import GITIGNORE, SKELETON_DIR


def create_newsletter(folder: Path) -> list[Path]:
    """Copy the example settings, issue, layout and list into folder; never overwrite."""
    sources = sorted(
        p for p in SKELETON_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    targets = [(source, folder / source.relative_to(SKELETON_DIR)) for source in sources]
    clashes = [target for _source, target in targets if target.exists()]
    if clashes:
        listed = ", ".join(str(path) for path in clashes[:3])
        raise MailerError(f"{folder}: already has {listed}; choose an empty folder")
    written = []
    for source, target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    gitignore = folder / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(GITIGNORE, encoding="utf-8")
        written.append(gitignore)
    return written
