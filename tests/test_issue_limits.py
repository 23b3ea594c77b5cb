"""Issue files that try to hurt the loader: too big, not a file, aliases that loop or explode."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from mailer.errors import IssueError
from mailer.issue import MAX_ISSUE_BYTES, LoadedIssue, load_issue, load_issues, try_load_issue

VALID = "subject: News\ndate: 2023-10-20\nblocks: [{type: divider}]\n"


def error_of(path: Path) -> str:
    """Return the error loading path raises, as printed."""
    with pytest.raises(IssueError) as caught:
        load_issue(path, "issues/x.yaml")
    return str(caught.value)


def test_a_file_over_the_cap_is_refused_in_one_line_without_being_read(tmp_path: Path) -> None:
    path = tmp_path / "issue.yaml"
    with path.open("wb") as file:
        file.write(VALID.encode())
        file.truncate(200_000_000)  # sparse: reading it all would take seconds and 200 MB
    started = time.perf_counter()
    message = error_of(path)
    assert time.perf_counter() - started < 0.5
    assert message == (
        "issues/x.yaml: over the 1 MB limit for an issue file (200.0 MB); "
        "link to long documents instead of pasting them"
    )


def test_one_byte_over_the_cap_is_refused_and_the_cap_itself_is_read(tmp_path: Path) -> None:
    path = tmp_path / "issue.yaml"
    filler = "# " + "x" * 97 + "\n"
    text = VALID + filler * ((MAX_ISSUE_BYTES - len(VALID)) // len(filler))
    text += "#" * (MAX_ISSUE_BYTES - len(text) - 1) + "\n"
    assert len(text) == MAX_ISSUE_BYTES
    path.write_text(text)
    assert load_issue(path).issue.subject == "News"
    path.write_text(text + "\n")
    assert "over the 1 MB limit" in error_of(path)


def test_a_fifo_is_refused_instead_of_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "issue.yaml"
    os.mkfifo(path)
    results: list[LoadedIssue | IssueError] = []
    worker = threading.Thread(target=lambda: results.append(try_load_issue(path, "x.yaml")))
    worker.start()
    worker.join(5)
    if worker.is_alive():  # it opened the FIFO and waits: unblock it, then fail
        with path.open("w"):
            pass
        worker.join()
        pytest.fail("loading a FIFO blocked")
    assert [str(r) for r in results] == ["x.yaml: not a regular file; an issue is a .yaml file"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "subject: &a [*a]\n" + VALID,
            "issues/x.yaml:1:10: subject[0]: an alias (*name) inside its own anchor; remove it",
        ),
        (
            "subject: x\nextra: &a {b: [1, *a]}\n",
            "issues/x.yaml:2:8: extra.b[1]: an alias (*name) inside its own anchor; remove it",
        ),
        (
            "subject: " + "[" * 60 + "]" * 60 + "\n",
            "issues/x.yaml:1:60: nested over 50 levels deep; flatten it",
        ),
        (
            "subject: " + "[" * 3000 + "]" * 3000 + "\n",
            "issues/x.yaml: nested too deep to read (over 50 levels?); flatten it",
        ),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]\n"
                for previous, name in zip("abcde", "bcdef", strict=True)
            ),
            "issues/x.yaml: over 100000 YAML values (aliases repeated inside aliases?); "
            "write the values out",
        ),
    ],
    ids=["alias in itself", "alias in a parent", "too deep", "too deep to compose", "alias bomb"],
)
def test_hostile_yaml_is_an_issue_error_at_its_line(
    text: str, expected: str, tmp_path: Path
) -> None:
    path = tmp_path / "issue.yaml"
    path.write_text(text)
    assert error_of(path) == expected


def test_a_bad_file_among_many_is_reported_and_the_others_load(tmp_path: Path) -> None:
    names = ["a.yaml", "loop.yaml", "b.yaml", "big.yaml"]
    for name in names:
        (tmp_path / name).write_text(VALID)
    (tmp_path / "loop.yaml").write_text("subject: &a [*a]\n")
    (tmp_path / "big.yaml").write_bytes(b"#" * (MAX_ISSUE_BYTES + 1))
    loaded, failed = load_issues([tmp_path / name for name in names], lambda p: p.name)
    assert [issue.stem for issue in loaded] == ["a", "b"]
    assert [str(err).split(":")[0] for err in failed] == ["loop.yaml", "big.yaml"]


def test_a_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "issue.yaml"
    path.mkdir()
    result = try_load_issue(path, "issues/issue.yaml")
    assert str(result) == "issues/issue.yaml: not a regular file; an issue is a .yaml file"


def test_an_exception_the_loader_does_not_expect_becomes_an_error_naming_the_file() -> None:
    # The OS refuses a name with a NUL byte with ValueError, not OSError: nothing in the
    # loader expects it, like any bug would be, and it must stop only this file.
    result = try_load_issue(Path("issues/a\x00.yaml"), "issues/a.yaml")
    assert isinstance(result, IssueError)
    assert str(result) == (
        "issues/a.yaml: cannot be loaded (ValueError: embedded null byte); "
        "`mailer validate issues/a.yaml` shows the details"
    )
