"""Benchmark `mailer validate issues/*.yaml`: time per file with 10 issues against 100.

Each file's send_at is checked against every other issue of the folder, so a validate that
reloads the folder per file grows with the square of the number of issues; loading the folder
once keeps the time per file flat. Prints the whole command's time per file (median of 3 runs)
for both sizes and their ratio (goal: at most ~1.5).

Run: .venv/bin/python benchmarks/validate_scaling.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
SAMPLE = REPO_DIR / "issues" / "2023-10-20-ld-newsletter.yaml"
RUNS = 3


def make_folder(folder: Path, count: int) -> None:
    """Write a newsletter folder with count weekly issues, each at its own send_at."""
    shutil.copy(REPO_DIR / "mailer.toml", folder / "mailer.toml")
    issues = folder / "issues"
    issues.mkdir()
    text = SAMPLE.read_text(encoding="utf-8")
    for week in range(count):
        day = date(2030, 1, 7) + timedelta(weeks=week)  # Mondays
        issue = text.replace("2023-10-20T09:00:00+01:00", f"{day}T09:00:00+00:00")
        (issues / f"{day}-news.yaml").write_text(issue, encoding="utf-8")


def seconds_per_file(count: int) -> float:
    """Return the median time of `mailer validate issues/*.yaml`, divided by count."""
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        make_folder(folder, count)
        files = sorted(str(p.relative_to(folder)) for p in (folder / "issues").glob("*.yaml"))
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "mailer", "validate", *files],
                cwd=folder,
                capture_output=True,
                text=True,
            )
            times.append(time.perf_counter() - started)
            if done.returncode != 0:
                raise SystemExit(f"validate failed:\n{done.stderr}")
        return statistics.median(times) / count


def main() -> None:
    """Print the figures."""
    small, large = seconds_per_file(10), seconds_per_file(100)
    print(f"validate, 10 issues:  {small * 1000:.1f} ms per file")
    print(f"validate, 100 issues: {large * 1000:.1f} ms per file")
    print(f"ratio (100 / 10 per file): {large / small:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
