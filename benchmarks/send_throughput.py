"""Benchmark sending: raw smtplib against `mailer send`, 1 against 4 connections, the dry run.

Run: .venv/bin/python benchmarks/send_throughput.py (--help for the sizes; ~3 min on 2 cores)

Every SMTP sink runs in its own process, so the client under test has a core to itself.
"CPU" is the client's CPU time a message (this process: all its threads, not the sink).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import multiprocessing
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, AnyStr

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

REPO_DIR = Path(__file__).resolve().parent.parent
ISSUE = "issues/2023-10-20-ld-newsletter.yaml"
SECRET = "benchmark-unsubscribe-secret-0123456789"
HOST = "127.0.0.1"
SENDER = "learning@northfield-safeguarding.example"
VERDICT = {True: "met", False: "MISSED"}


class Sink:
    """Accept every message and keep nothing."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Say 250 to the message data."""
        return "250 OK"


class SinkSMTP(SMTP):
    """aiosmtpd's SMTP, optionally reading DATA in large chunks and waiting before each reply."""

    def __init__(self, handler: Sink, delay: float, stock: bool, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.delay = delay
        self.stock = stock
        self.continued = False

    async def push(self, status: AnyStr) -> None:
        """Wait, then reply; a multi-line reply ("250-...") waits once, before its first line."""
        line = status if isinstance(status, str) else status.decode("ascii", "replace")
        if self.delay and not self.continued:
            await asyncio.sleep(self.delay)
        self.continued = line[3:4] == "-"
        await super().push(status)

    async def smtp_DATA(self, arg: str) -> None:
        """Read the data in 64 KB chunks up to the final dot, unless asked for the stock reader.

        aiosmtpd's own reader runs Python code for every line: ~10 ms for the ~1,500 lines of
        a 90 KB message, which would cap any client at ~90 messages/s and measure the sink.
        """
        if self.stock:
            await super().smtp_DATA(arg)
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        tail = b""
        while not tail.endswith(b"\r\n.\r\n"):
            chunk = await self._reader.read(1 << 16)
            if not chunk:
                return
            tail = (tail + chunk)[-5:]
        self.envelope = self._create_envelope()  # what aiosmtpd does after DATA
        await self.push("250 OK")


class SinkController(Controller):
    """Serve one SinkSMTP per connection."""

    def __init__(self, port: int, delay: float, stock: bool) -> None:
        super().__init__(Sink(), hostname=HOST, port=port, server_hostname="sink.test")
        self.delay = delay
        self.stock = stock

    def factory(self) -> SinkSMTP:
        """Return the protocol for a new connection."""
        return SinkSMTP(self.handler, self.delay, self.stock, **self.SMTP_kwargs)


def serve(port: int, delay: float, stock: bool, ready: Any) -> None:
    """Run a sink until killed (the target of the sink process)."""
    SinkController(port, delay, stock).start()
    ready.set()
    threading.Event().wait()


@contextmanager
def sink(*, delay: float = 0.0, stock: bool = False) -> Iterator[int]:
    """Run a sink in another process; yield its port."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    process = context.Process(target=serve, args=(port, delay, stock, ready), daemon=True)
    process.start()
    try:
        if not ready.wait(30):
            raise SystemExit("the SMTP sink did not start")
        yield port
    finally:
        process.terminate()
        process.join()


def make_folder(folder: Path, port: int, count: int, connections: int = 1) -> Path:
    """Set up a newsletter folder for the sample issue that sends to the sink on port."""
    settings = (REPO_DIR / "mailer.toml").read_text(encoding="utf-8")
    head = settings.split("\n[smtp]\n")[0]
    folder.mkdir()
    (folder / "mailer.toml").write_text(
        f'{head}\n[smtp]\nhost = "{HOST}"\nport = {port}\nsecurity = "none"\ntimeout = 30\n\n'
        f"[limits]\nper_second = 1000000\nconnections = {connections}\n"
        "messages_per_connection = 1000000\nretry_delay = 0.01\n",
        encoding="utf-8",
    )
    (folder / "issues").mkdir()
    (folder / ISSUE).write_bytes((REPO_DIR / ISSUE).read_bytes())
    with (folder / "recipients.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email", "First Name"])
        writer.writerows([address(n), f"Name{n}"] for n in range(count))
    return folder


def address(n: int) -> str:
    """Return the n-th made-up recipient address."""
    return f"person{n:06d}@example.org"


def child_env() -> dict[str, str]:
    """Return the environment for the CLI: no MAILER_* from this shell but the secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILER_")}
    return {**env, "MAILER_UNSUBSCRIBE_SECRET": SECRET}


def run_cli(folder: Path, *args: str) -> tuple[float, int, str]:
    """Run `python -m mailer --dir folder ARGS`; return wall seconds, peak RSS bytes, output."""
    command = [sys.executable, "-m", "mailer", "--dir", str(folder), *args]
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=child_env()
        )
        # wait4 gives this child's own rusage; RUSAGE_CHILDREN would also count the sinks.
        _pid, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode("utf-8", "replace")
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {process.returncode}:\n{output}")
    return elapsed, usage.ru_maxrss * 1024, output  # ru_maxrss is in KB on Linux


def sample_message(folder: Path) -> bytes:
    """Return the bytes of one real message built for the sample issue."""
    from mailer.send import prepare_send

    plan = prepare_send(folder, folder / ISSUE)
    fields = {"email": address(0), "first_name": "Name0"}
    return plan.factory().build(fields, now=datetime.now(UTC)).data


def raw_smtplib(port: int, data: bytes, count: int) -> tuple[float, float]:
    """Return messages/s and CPU ms a message for smtplib over one reused connection."""
    with smtplib.SMTP(HOST, port, local_hostname="bench.test") as smtp:
        for n in range(20):  # warm up: the first messages pay for the sink's start
            smtp.sendmail(SENDER, [address(n)], data)
        started, cpu = time.perf_counter(), time.process_time()
        for n in range(count):
            smtp.sendmail(SENDER, [address(n)], data)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return count / elapsed, cpu / count * 1000


def in_process(folder: Path, count: int) -> tuple[float, float]:
    """Return messages/s and CPU ms a message for deliver() alone: no start-up, no render."""
    from mailer.send import deliver, prepare_send

    plan = prepare_send(folder, folder / ISSUE)
    started, cpu = time.perf_counter(), time.process_time()
    report = deliver(plan)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if report.sent_now != count:
        raise SystemExit(f"{folder}: deliver() sent {report.sent_now} of {count}: {report}")
    return count / elapsed, cpu / count * 1000


def row(label: str, value: str, goal: str = "") -> None:
    """Print one line of the table."""
    print(f"{label:<62}{value:>24}  {goal}".rstrip(), flush=True)


def rate(per_second: float, cpu_ms: float | None = None) -> str:
    """Return a throughput, with the client's CPU time a message when known."""
    cpu = f" ({cpu_ms:.2f} ms CPU)" if cpu_ms is not None else ""
    return f"{per_second:,.0f} msg/s{cpu}"


def parse_args() -> argparse.Namespace:
    """Return the sizes to measure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="for raw smtplib and send")
    parser.add_argument("--rounds", type=int, default=3, help="raw and deliver(): best of")
    parser.add_argument("--slow-messages", type=int, default=400, help="for 1 vs 4 connections")
    parser.add_argument("--reply-delay", type=float, default=0.005, help="slow sink, seconds")
    parser.add_argument("--dry-runs", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--stock-sink", action="store_true", help="read DATA with aiosmtpd's line-by-line loop"
    )
    return parser.parse_args()


def compare_with_raw(base: Path, count: int, rounds: int, stock: bool) -> None:
    """Print sections 1 and 2: raw smtplib, then `mailer send`, to the same sink."""
    with sink(stock=stock) as port:
        data = sample_message(make_folder(base / "raw", port, 1))
        row(f"sample message ({Path(ISSUE).stem})", f"{len(data) / 1024:.1f} KB")
        raws, alones = [], []
        for n in range(rounds):  # interleaved, best of each: other load skews a single run
            raws.append(raw_smtplib(port, data, count))
            alones.append(in_process(make_folder(base / f"deliver-{n}", port, count), count))
        (raw, raw_cpu), (alone, alone_cpu) = max(raws), max(alones)
        best = f"{count:,} msgs, best of {rounds}"
        row(f"1. raw smtplib, 1 reused connection, {best}", rate(raw, raw_cpu))
        seconds, _rss, output = run_cli(make_folder(base / "cli", port, count), "send", ISSUE, "-y")
        if f"sent {count} now" not in output:
            raise SystemExit(f"mailer send did not send {count}:\n{output}")
        row(f"2. mailer send, end to end ({seconds:.1f} s, subprocess)", rate(count / seconds))
        row(f"   mailer send, deliver() alone, {best}", rate(alone, alone_cpu))
        row("   end to end / raw smtplib", f"{count / seconds / raw:.0%}")
        ratio = alone / raw
        row("   deliver() alone / raw smtplib", f"{ratio:.0%}", f">= 80%: {VERDICT[ratio >= 0.8]}")


def compare_connections(base: Path, count: int, delay: float) -> None:
    """Print section 3: deliver() over 1 and 4 connections to a sink slow to reply."""
    with sink(delay=delay) as port:
        rates = {}
        for connections in (1, 4):
            folder = make_folder(base / f"slow-{connections}", port, count, connections)
            rates[connections], cpu = in_process(folder, count)
            label = f"3. deliver(), {delay * 1000:g} ms a reply, connections = {connections}"
            row(label, rate(rates[connections], cpu))
        speedup = rates[4] / rates[1]
        row("   4 connections over 1", f"{speedup:.2f}x", f">= 3x: {VERDICT[speedup >= 3]}")


def measure_dry_runs(base: Path, sizes: list[int]) -> None:
    """Print section 4: `send --dry-run` time and peak memory, one fresh process each."""
    times = []
    for size in sizes:
        folder = make_folder(base / f"dry-{size}", 1, size)  # port 1: a dry run never connects
        outbox = folder / "outbox"
        seconds, rss, output = run_cli(folder, "send", ISSUE, "--dry-run", "--outbox", str(outbox))
        if f"wrote {size} messages" not in output:
            raise SystemExit(f"the dry run did not write {size} messages:\n{output}")
        shutil.rmtree(outbox)  # 100,000 messages are ~9 GB
        times.append((size, seconds))
        mb = rss / 1024**2
        row(f"4. dry run, {size:,} recipients: wall time", f"{seconds:.1f} s")
        row("   time per 10k recipients", f"{seconds / size * 10_000:.2f} s")
        row("   peak RSS of the process", f"{mb:.0f} MB", f"< 150 MB: {VERDICT[mb < 150]}")
    if len(times) > 1:
        # Linear time: the cost of the extra recipients, start-up excluded, is no more per 10k
        # than the smallest run's (start-up included).
        (small, t_small), (large, t_large) = times[0], times[-1]
        marginal = (t_large - t_small) / (large - small) * 10_000
        limit = t_small / small * 10_000
        label = f"   time per 10k, {small:,} to {large:,} (start-up excluded)"
        row(label, f"{marginal:.2f} s", f"<= {limit:.2f} s: {VERDICT[marginal <= limit * 1.1]}")


def main() -> None:
    """Print the figures."""
    args = parse_args()
    os.environ.update(child_env())  # prepare_send reads MAILER_* in this process too
    with tempfile.TemporaryDirectory(prefix="send-bench-") as temp:
        base = Path(temp)
        compare_with_raw(base, args.messages, args.rounds, args.stock_sink)
        compare_connections(base, args.slow_messages, args.reply_delay)
        measure_dry_runs(base, args.dry_runs)


if __name__ == "__main__":
    main()
