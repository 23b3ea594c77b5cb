"""Links online: fetch each distinct web address once; report broken ones and redirects."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from mailer.checks.base import Finding
from mailer.checks.links import Link

USER_AGENT = "mailer-check/0.1 (newsletter link checker)"
WORKERS = 8
MAX_REDIRECTS = 10
# Servers that refuse or mishandle HEAD answer these; a GET then says whether the page is there.
HEAD_REFUSED = {400, 403, 405, 501}
# Pages behind a login or a rate limit may open fine for readers: worth a look, not a refusal.
DOUBTFUL = {401, 403, 407, 429}


@dataclass(frozen=True)
class Fetched:
    """What one web address answered, after following its redirects."""

    url: str
    status: int | None
    redirects: tuple[tuple[int, str], ...]
    error: str | None = None
    timed_out: bool = False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand every redirect back to us, so that each hop is seen and reported."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def fetch(url: str, timeout: float) -> Fetched:
    """Ask for url with HEAD (GET where HEAD is refused), following redirects."""
    redirects: list[tuple[int, str]] = []
    current = url
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            status, location = _request(current, "HEAD", timeout)
            if status in HEAD_REFUSED:
                status, location = _request(current, "GET", timeout)
            if 300 <= status < 400 and location:
                current = urljoin(current, location)
                redirects.append((status, current))
                continue
            return Fetched(url, status, tuple(redirects))
    except TimeoutError:
        return Fetched(url, None, tuple(redirects), f"no answer within {timeout:g} s", True)
    except (OSError, http.client.HTTPException, ValueError) as err:
        return Fetched(url, None, tuple(redirects), _reason(err))
    return Fetched(url, None, tuple(redirects), f"more than {MAX_REDIRECTS} redirects")


def _request(url: str, method: str, timeout: float) -> tuple[int, str | None]:
    request = urllib.request.Request(
        url, method=method, headers={"User-Agent": USER_AGENT, "Accept": "*/*"}
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            return int(response.status), None
    except urllib.error.HTTPError as err:
        location = err.headers.get("Location") if err.headers else None
        err.close()
        return err.code, location
    except urllib.error.URLError as err:
        if isinstance(err.reason, TimeoutError):
            raise err.reason from err
        raise


def _reason(err: BaseException) -> str:
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    return str(getattr(reason, "strerror", None) or reason) or type(reason).__name__


def fetch_all(urls: Iterable[str], timeout: float) -> dict[str, Fetched]:
    """Fetch each distinct URL once, several at a time."""
    distinct = list(dict.fromkeys(urls))
    if not distinct:
        return {}
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(distinct))) as pool:
        return dict(zip(distinct, pool.map(lambda u: fetch(u, timeout), distinct), strict=True))


def check_online(
    links: list[Link], timeout: float, archive_url: str | None = None
) -> list[Finding]:
    """Fetch every web link and image once; report what is broken, slow or redirected.

    Links into the archive are left out: its pages and calendar files appear when the
    issue is sent and `mailer archive` runs, and archive_warnings speaks for them.
    """
    uses: dict[str, list[Link]] = {}
    for link in links:
        url = urldefrag(link.url.strip()).url
        if archive_url and url.startswith(archive_url.rstrip("/") + "/"):
            continue
        if urlsplit(url).scheme.lower() in ("http", "https") and urlsplit(url).netloc:
            uses.setdefault(url, []).append(link)
    findings = []
    for url, result in fetch_all(uses, timeout).items():
        finding = _finding(result, uses[url])
        if finding is not None:
            findings.append(finding)
    return findings


def _finding(result: Fetched, links: list[Link]) -> Finding | None:
    where = links[0].where
    shown = f'"{result.url}"' + (f" (used {len(links)} times)" if len(links) > 1 else "")
    if result.timed_out:
        return Finding(
            "warning",
            "links",
            where,
            f"{shown} gave {result.error}",
            "open it in a browser; if it is down, fix or remove the link",
        )
    if result.error is not None or result.status is None:
        return Finding(
            "error",
            "links",
            where,
            f"{shown} cannot be reached: {result.error}",
            "check the address for typos, or remove the link",
        )
    final = result.redirects[-1][1] if result.redirects else result.url
    if result.status in DOUBTFUL:
        return Finding(
            "warning",
            "links",
            where,
            f"{shown} answered {_status(result.status)}" + _via(result),
            "open it as a reader would (not logged in) and check that it works",
        )
    if result.status >= 400:
        return Finding(
            "error",
            "links",
            where,
            f"{shown} is broken: it answered {_status(result.status)}" + _via(result),
            "find the page's new address, or remove the link",
        )
    if result.redirects:
        hops = " -> ".join(f"{code} {target}" for code, target in result.redirects)
        return Finding(
            "warning",
            "links",
            where,
            f"{shown} redirects: {hops}",
            f'link to "{final}" directly',
        )
    return None


def _via(result: Fetched) -> str:
    if not result.redirects:
        return ""
    return f" after redirecting to {result.redirects[-1][1]}"


def _status(code: int) -> str:
    phrase = http.client.responses.get(code, "")
    return f"{code} {phrase}".strip()
