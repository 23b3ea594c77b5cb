"""mailer init's example settings: check and the dry run warn, a real send refuses."""

from __future__ import annotations

from pathlib import Path

from mailer.checks import check_example_values
from mailer.folder import load_settings
from tests.sending import ISSUE, cli, make_folder
from tests.smtp_servers import MakeServer

OWN = {
    "organisation": "Riverside Council",
    "postal_address": "Town Hall, Riverside RV1 1AA",
    "from": "news@riverside.gov.uk",
    "reply_to": "news@riverside.gov.uk",
    "list_id": "staff-news.riverside.gov.uk",
    "unsubscribe_mailto": "news@riverside.gov.uk",
}


def set_keys(folder: Path, values: dict[str, str], drop: tuple[str, ...] = ()) -> None:
    """Rewrite top-level keys of the folder's mailer.toml as someone editing it would."""
    lines = []
    for line in (folder / "mailer.toml").read_text(encoding="utf-8").splitlines():
        key = line.split(" = ", 1)[0]
        if key in drop:
            continue
        lines.append(f'{key} = "{values[key]}"' if key in values else line)
    (folder / "mailer.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_the_scaffolds_values_get_one_warning_naming_each(newsletter: Path) -> None:
    (finding,) = check_example_values(load_settings(newsletter))
    assert finding.where == "mailer.toml: from" and finding.severity == "warning"
    for key in ("from", "reply_to", "unsubscribe_url", "archive_url", "list_id", "postal_address"):
        assert f"{key} (" in finding.message
    assert "delete unsubscribe_url and archive_url" in finding.hint


def test_own_values_and_no_website_get_no_warning(newsletter: Path) -> None:
    set_keys(newsletter, OWN, drop=("unsubscribe_url", "archive_url"))
    settings = load_settings(newsletter)
    assert settings.unsubscribe_url is None and settings.archive_url is None
    assert check_example_values(settings) == []


def test_a_real_send_with_example_values_is_refused_a_dry_run_warns(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, ["kim@example.org"])
    relay = {"MAILER_SMTP_HOST": "smtp.office365.com"}  # a real relay, not this machine
    code, _out, err = cli("send", ISSUE, "--yes", env=relay)
    assert code == 1
    assert "mailer.toml: from (" in err and "still hold mailer init's examples" in err
    assert "nothing was sent" in err and "Traceback" not in err
    code, _out, err = cli("send", ISSUE, "--dry-run", env=relay)
    assert code == 0, err
    assert "still hold mailer init's examples" in err
    # To a server on this machine (a test, a local Postfix) the examples may go.
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert len(server.received) == 1
