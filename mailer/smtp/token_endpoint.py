"""POST a form to an OAuth 2.0 token endpoint over verified TLS; no redirects, bounded reads."""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import IO, Any

MAX_ANSWER = 1 << 20  # a token answer is a few kilobytes


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: a token request (and its secret) goes to token_url and nowhere else."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> None:
        return None


def post_form(
    url: str, form: dict[str, str], context: ssl.SSLContext, timeout: float
) -> tuple[int, bytes] | str:
    """Return the status and body of the answer (errors too), or why there is none.

    Nothing is raised: the caller raises its own error outside any except block, so that
    no traceback holds the form (and the secret in it).
    """
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(form).encode("ascii"),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirects)
    try:
        with opener.open(request, timeout=timeout) as answer:
            return answer.status, answer.read(MAX_ANSWER)
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read(MAX_ANSWER)
    except urllib.error.URLError as err:
        return _unreachable(err.reason)
    except (OSError, http.client.HTTPException) as err:
        return _unreachable(err)


def _unreachable(reason: object) -> str:
    """Say why the endpoint gave no answer, and what to do."""
    if isinstance(reason, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate check failed ({reason.verify_message}); if the endpoint uses a "
            "private CA, set smtp.ca_file to its certificate (PEM)"
        )
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve the host name ({reason.strerror}); check token_url"
    if isinstance(reason, TimeoutError | socket.timeout):
        return "no answer in time (smtp.timeout); try again later"
    if isinstance(reason, OSError):
        said = reason.strerror or str(reason) or type(reason).__name__
        return f"cannot connect ({said}); check token_url and the network"
    return f"no answer ({reason or 'closed'}); check token_url and the network"
