"""Compare building the sample issue's message per recipient: EmailMessage against MessageFactory.

Run from the repository: `.venv/bin/python benchmarks/message_build.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

from mailer.config import Settings
from mailer.folder import load_settings
from mailer.issue import load_issue
from mailer.mime import MessageFactory
from mailer.render import Rendered, render_issue

FOLDER = Path(__file__).resolve().parent.parent  # the repository is a newsletter folder
SAMPLE = FOLDER / "issues" / "2023-10-20-ld-newsletter.yaml"
SECRET = "benchmark-secret"


def recipient(i: int) -> dict[str, str]:
    """Return the CSV fields of the i-th made-up recipient."""
    return {"email": f"person{i}@example.org", "first_name": f"Name{i}"}


def naive(settings: Settings, rendered: Rendered, made: MessageFactory) -> Callable[[int], bytes]:
    """Return a builder doing what a naive tool does: a fresh EmailMessage per recipient."""

    def build(i: int) -> bytes:
        fields = recipient(i)
        url = made.unsubscribe_url(fields["email"])
        email = rendered.personalise(fields, {"unsubscribe_url": url})
        message = EmailMessage()
        message["From"] = formataddr((settings.from_name or settings.name, settings.from_address))
        message["To"] = fields["email"]
        message["Subject"] = email.subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain=settings.sender_domain)
        message["List-Id"] = f'"{settings.name}" <{settings.list_id}>'
        message["List-Unsubscribe"] = f"<{url}>"
        message.set_content(email.text)
        message.add_alternative(email.html, subtype="html")
        return message.as_bytes(policy=SMTP)

    return build


def factory(made: MessageFactory) -> Callable[[int], bytes]:
    """Return a builder that fills the factory's prepared message for one recipient."""
    return lambda i: made.build(recipient(i), now=datetime.now(UTC)).data


def measure(build: Callable[[int], bytes], count: int, rounds: int = 3) -> float:
    """Return the CPU seconds per message, best of rounds over count recipients each.

    CPU time rather than wall time, so other processes on a shared machine skew it less.
    """
    for i in range(10):
        build(i)
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for i in range(count):
            build(i)
        best = min(best, (time.process_time() - start) / count)
    return best


def main() -> None:
    """Render the sample once, then print ms per message and messages/s for both ways."""
    settings = load_settings(FOLDER)
    rendered = render_issue(FOLDER, load_issue(SAMPLE), settings)
    start = time.perf_counter()
    made = MessageFactory.prepare(settings, rendered, SAMPLE.stem, unsubscribe_secret=SECRET)
    prepare_ms = (time.perf_counter() - start) * 1000
    size = len(made.build(recipient(0), now=datetime.now(UTC)).data)
    print(f"sample issue {SAMPLE.stem}: {size / 1024:.0f} KB a message")
    print(f"MessageFactory.prepare, once per issue: {prepare_ms:.1f} ms")
    print(f"{'way (CPU time, best of 3)':<42}{'ms/message':>12}{'messages/s':>12}")
    rows = [
        ("EmailMessage per recipient (naive)", measure(naive(settings, rendered, made), 200)),
        ("MessageFactory.build", measure(factory(made), 5000)),
    ]
    for label, seconds in rows:
        print(f"{label:<42}{seconds * 1000:>12.3f}{1 / seconds:>12,.0f}")
    print(f"MessageFactory.build is {rows[0][1] / rows[1][1]:.0f}x faster")


if __name__ == "__main__":
    main()
