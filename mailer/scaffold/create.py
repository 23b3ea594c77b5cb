"""Create a new newsletter folder from the skeleton that ships with mailer."""

from __future__ import annotations

import shutil
from pathlib import Path

from mailer.errors import MailerError
from mailer.folder import GITIGNORE, SETTINGS_FILE, SKELETON_DIR
from mailer.scaffold.settings import Answers, settings_text


def create_newsletter(folder: Path, answers: Answers | None = None) -> list[Path]:
    """Copy the example settings, issue, layout and list into folder; never overwrite.

    mailer.toml gets the answers (the skeleton's examples where there is none); the
    default layout is copied into layouts/default, so that it can be changed there.
    """
    sources = sorted(
        p for p in SKELETON_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    targets = [(source, folder / source.relative_to(SKELETON_DIR)) for source in sources]
    clashes = [target for _source, target in targets if target.exists()]
    if clashes:
        listed = ", ".join(str(path) for path in clashes[:3])
        raise MailerError(f"{folder}: already has {listed}; choose an empty folder")
    settings = settings_text(
        (SKELETON_DIR / SETTINGS_FILE).read_text(encoding="utf-8"), answers or Answers()
    )
    written = []
    try:
        for source, target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.name == SETTINGS_FILE and source.parent == SKELETON_DIR:
                target.write_text(settings, encoding="utf-8")
            else:
                shutil.copyfile(source, target)
            written.append(target)
        gitignore = folder / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text(GITIGNORE, encoding="utf-8")
            written.append(gitignore)
    except OSError as err:
        raise MailerError(
            f"{folder}: cannot write ({err.strerror}); choose another folder"
        ) from err
    return written
