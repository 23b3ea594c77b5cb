"""Publish the built archive: copy it into [archive] publish_dir, then run publish_command.

publish_dir is often a web server's document root, or a share others write to as well:

- each file is written beside its place under a hidden temporary name, then renamed over
  it, so a reader never gets half a file; an unchanged file is not touched;
- pages and calendar files go first, the index and the feed last, so nothing links to a
  page that is not there yet;
- what mailer put there is listed in .mailer-published; only those files are ever replaced
  or removed. A file of the same name that mailer did not put there stops the publish
  before anything is written, and is left alone.

publish_command runs without a shell (its words as given; {archive_dir} is replaced), in the
newsletter folder, with no MAILER_* secret in its environment, and is stopped (its whole
process group) after publish_timeout seconds. On failure, its error output is shown.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mailer.errors import MailerError
from mailer.folder import ARCHIVE_FEED, ARCHIVE_INDEX, Newsletter
from mailer.publish.archive import MANIFEST_FILE

PUBLISHED_FILE = ".mailer-published"
_LAST = (ARCHIVE_INDEX, ARCHIVE_FEED)  # written last: they link to everything else
_SHOWN_ERROR_LINES = 20


class PublishError(MailerError):
    """The archive could not be published. The mail went out: its links wait for a publish."""

    exit_code = 3


@dataclass(frozen=True)
class PublishReport:
    """Where the archive went: publish_dir (files written, removed), publish_command."""

    publish_dir: Path | None
    copied: int
    removed: int
    command: str | None

    def __str__(self) -> str:
        """Say where the archive was published, in a few words."""
        parts = []
        if self.publish_dir is not None:
            changed = f"{self.copied} file(s) written, {self.removed} removed"
            parts.append(f"to {self.publish_dir} ({changed})")
        if self.command is not None:
            parts.append(f"by {self.command}")
        return "published " + " and ".join(parts)


def mark_unpublished(newsletter: Newsletter) -> None:
    """Remember that an issue went out since the archive was last published."""
    path = newsletter.publish_pending_path
    with contextlib.suppress(OSError):  # at worst, the next publish is the next send's
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def is_unpublished(newsletter: Newsletter) -> bool:
    """Say whether an issue went out since the archive was last published (so publish it)."""
    return newsletter.settings.archive.publishes and newsletter.publish_pending_path.exists()


def publish_archive(newsletter: Newsletter, archive_dir: Path) -> PublishReport:
    """Publish the archive built in archive_dir as [archive] says; raise PublishError."""
    archive = newsletter.settings.archive
    copied = removed = 0
    command = None
    if newsletter.publish_dir is not None:
        copied, removed = copy_archive(archive_dir, newsletter.publish_dir)
    if archive.publish_command is not None:
        built = str(archive_dir.resolve())
        words = [word.replace("{archive_dir}", built) for word in archive.publish_command]
        run_command(words, newsletter.dir, archive.publish_timeout)
        command = shlex.join(words)
    newsletter.publish_pending_path.unlink(missing_ok=True)
    return PublishReport(newsletter.publish_dir, copied, removed, command)


def copy_archive(archive_dir: Path, publish_dir: Path) -> tuple[int, int]:
    """Copy the archive's files into publish_dir; return how many were written and removed."""
    where = f"{publish_dir} ([archive] publish_dir)"
    names = _built(archive_dir)
    if not publish_dir.is_dir():
        raise PublishError(
            f"{where}: no such folder; create it (or mount the share it is on), then run "
            "`mailer archive` to publish"
        )
    if publish_dir.resolve() == archive_dir.resolve():
        raise PublishError(f"{where}: this is where the archive is built; choose another folder")
    try:
        before = _read_list(publish_dir / PUBLISHED_FILE)
        _refuse_others(publish_dir, names, before, archive_dir)
        # Listed first, so a publish cut short still knows which files are its own.
        _write_list(publish_dir / PUBLISHED_FILE, before | set(names))
        copied = 0
        for name in sorted(names, key=lambda n: (n in _LAST, n)):
            copied += _copy_one(archive_dir / name, publish_dir / name)
        removed = 0
        for name in sorted(before - set(names)):
            stale = publish_dir / name
            if stale.is_file() and not stale.is_symlink() and _inside(stale, publish_dir):
                stale.unlink()
                removed += 1
        _write_list(publish_dir / PUBLISHED_FILE, set(names))
    except OSError as err:
        raise PublishError(
            f"{where}: cannot publish ({err.strerror or err}: {err.filename or publish_dir}); "
            "check the folder's permissions and free space"
        ) from err
    return copied, removed


def _built(archive_dir: Path) -> list[str]:
    """Return the files the last build wrote (its manifest), safe names only."""
    try:
        lines = (archive_dir / MANIFEST_FILE).read_text(encoding="utf-8").splitlines()[1:]
    except (OSError, UnicodeDecodeError) as err:
        raise PublishError(
            f"{archive_dir}: no archive built there ({err}); run `mailer archive`"
        ) from err
    names = [line for line in lines if line and not line.startswith("#")]
    for name in names:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise PublishError(f"{archive_dir / MANIFEST_FILE}: unsafe name {name!r}; rebuild it")
    return names


def _refuse_others(publish_dir: Path, names: list[str], ours: set[str], built: Path) -> None:
    """Raise before writing anything if a file to write exists and mailer did not put it."""
    others = []
    for name in names:
        target = publish_dir / name
        if name in ours or not (target.exists() or target.is_symlink()):
            continue
        same = target.is_file() and not target.is_symlink() and _same(built / name, target)
        if not same:  # the same bytes: from a publish cut short, or copied by hand; ours
            others.append(name)
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise PublishError(
            f"{publish_dir} ([archive] publish_dir): {len(others)} file(s) there that mailer "
            f"did not put there would be replaced: {shown}; nothing was published and they "
            f"are untouched. Publish into a folder of its own (e.g. {publish_dir / 'newsletter'}, "
            "with archive_url to match), or move them away"
        )


def _copy_one(source: Path, target: Path) -> int:
    """Write source's bytes to target through a temporary file; return 1 if it changed."""
    data = source.read_bytes()
    if target.is_file() and not target.is_symlink() and _same_bytes(data, target):
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.mailer-part")
    try:
        partial.write_bytes(data)
        os.replace(partial, target)  # atomic: the old file or the new, never half of one
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return 1


def _same(a: Path, b: Path) -> bool:
    try:
        return _same_bytes(a.read_bytes(), b)
    except OSError:
        return False


def _same_bytes(data: bytes, path: Path) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _read_list(path: Path) -> set[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return set()
    return {line for line in lines if line and not line.startswith("#")}


def _write_list(path: Path, names: set[str]) -> None:
    partial = path.with_name(path.name + ".part")
    head = "# published by mailer: it replaces or removes only these files\n"
    partial.write_text(head + "".join(f"{name}\n" for name in sorted(names)), encoding="utf-8")
    os.replace(partial, path)


def run_command(words: list[str], folder: Path, timeout: float) -> None:
    """Run the publish command in the newsletter folder; raise PublishError on any failure."""
    shown = shlex.join(words)
    where = f"[archive] publish_command ({shown})"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILER_")}
    try:
        process = subprocess.Popen(
            words,
            cwd=folder,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: a timeout stops its children too
        )
    except FileNotFoundError as err:
        raise PublishError(
            f'{where}: "{words[0]}" not found (PATH={environment.get("PATH", "")}); give its '
            "full path in mailer.toml: cron runs with a short PATH"
        ) from err
    except OSError as err:
        raise PublishError(f'{where}: cannot run "{words[0]}" ({err.strerror or err})') from err
    try:
        _out, err_bytes = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(process)
        raise PublishError(
            f"{where}: still running after {timeout:g} s, so it was stopped; run it by hand "
            "to see why, or raise [archive] publish_timeout"
        ) from None
    if process.returncode != 0:
        errors = err_bytes.decode("utf-8", "replace").strip().splitlines()[-_SHOWN_ERROR_LINES:]
        said = "\n".join(f"  {line}" for line in errors) or "  (it printed no error)"
        ended = (
            f"was stopped by signal {-process.returncode}"
            if process.returncode < 0
            else f"failed with exit code {process.returncode}"
        )
        raise PublishError(f"{where} {ended}; run it by hand in {folder} to see why:\n{said}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the command and whatever it started: SIGTERM, then SIGKILL after 5 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.communicate(timeout=5.0)
            return
        except subprocess.TimeoutExpired:
            continue
    # Something that left the group still holds its output: stop reading, leave it be.
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    process.wait(timeout=5.0)
