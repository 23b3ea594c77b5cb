"""Benchmark compose: the whole command, the render step alone, `mailer --help`, HTML size.

Run: .venv/bin/python benchmarks/compose.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
SAMPLE = REPO_DIR / "issues" / "2023-10-20-ld-newsletter.yaml"
RUNS = 7


def timed_command(args: list[str], cwd: Path) -> float:
    """Return the median wall time of a command, in seconds."""
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(args, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    """Print the figures."""
    from mailer.folder import load_settings
    from mailer.issue import load_issue
    from mailer.render import SAMPLE_RECIPIENT, render_issue, sample_extras

    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        shutil.copy(REPO_DIR / "mailer.toml", folder / "mailer.toml")
        (folder / "issues").mkdir()
        shutil.copy(SAMPLE, folder / "issues" / SAMPLE.name)
        mailer = [sys.executable, "-m", "mailer"]
        whole = timed_command([*mailer, "compose", f"issues/{SAMPLE.name}", "--no-open"], folder)
        help_time = timed_command([*mailer, "--help"], folder)
        settings = load_settings(folder)
        loaded = load_issue(folder / "issues" / SAMPLE.name)
        render_issue(folder, loaded, settings)  # warm: imports and first-use costs
        renders = []
        for _ in range(RUNS):
            started = time.perf_counter()
            rendered = render_issue(folder, loaded, settings)
            renders.append(time.perf_counter() - started)
        email = rendered.personalise(SAMPLE_RECIPIENT, sample_extras(settings))
        fills = []
        for _ in range(200):
            started = time.perf_counter()
            rendered.personalise(SAMPLE_RECIPIENT, sample_extras(settings))
            fills.append(time.perf_counter() - started)
    rows = [
        ("mailer compose (whole command, median of 7)", whole * 1000, "ms"),
        ("render step alone (warm, median of 7)", statistics.median(renders) * 1000, "ms"),
        ("personalise one recipient (median of 200)", statistics.median(fills) * 1e6, "us"),
        ("mailer --help (median of 7)", help_time * 1000, "ms"),
        ("HTML size", len(email.html.encode()) / 1024, "KB"),
        ("text size", len(email.text.encode()) / 1024, "KB"),
    ]
    for label, value, unit in rows:
        print(f"{label:48} {value:8.1f} {unit}")


if __name__ == "__main__":
    main()
