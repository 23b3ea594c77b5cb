"""The mail services `mailer init --provider` knows: their server, security and sending limits.

Each figure comes with where it is documented, written as a comment into mailer.toml beside
it, so that the editor (or their IT team) can check it against the service's page today.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROVIDER_NAMES = ("office365", "google", "ses", "postfix", "other")


@dataclass(frozen=True)
class Provider:
    """A mail service: settings per section, each ("key", "TOML value" or None, "note")."""

    label: str
    source: str  # where the server and its security are documented
    smtp: list[tuple[str, str | None, str]] = field(default_factory=list)
    limits: list[tuple[str, str | None, str]] = field(default_factory=list)
    after_smtp: str = ""  # comment lines at the end of [smtp]


_EXCHANGE_LIMITS = 'Microsoft Learn, "Exchange Online limits", Sending limits'
PROVIDERS: dict[str, Provider] = {
    "office365": Provider(
        label="Microsoft 365 (Exchange Online)",
        source=(
            'Microsoft Learn, "How to set up a multifunction device or application to send '
            'email using Microsoft 365", option 1 (SMTP AUTH client submission): '
            "smtp.office365.com, port 587, STARTTLS. The mailbox needs Authenticated SMTP "
            "turned on (Microsoft 365 admin center: the user's Mail > Manage email apps)."
        ),
        smtp=[
            ("host", '"smtp.office365.com"', ""),
            ("port", "587", ""),
            ("security", '"starttls"', ""),
            ("username", "{from}", "The mailbox that sends: the From address."),
        ],
        limits=[
            ("per_minute", "30", f"30 messages a minute: {_EXCHANGE_LIMITS}."),
            ("per_day", "10000", f"10,000 recipients a day: {_EXCHANGE_LIMITS}."),
            (
                "connections",
                "3",
                "At most 3 connections at once per mailbox: Microsoft Learn, SMTP AUTH client "
                'submission troubleshooting (a 4th is refused: "432 4.3.2 STOREDRV.ClientSubmit;'
                ' sender thread limit exceeded").',
            ),
        ],
        after_smtp=(
            "# Microsoft is retiring passwords (basic authentication) for SMTP AUTH in Exchange\n"
            "# Online; OAuth 2.0 replaces them. Set up the token as the README's \"Logging in\n"
            '# with OAuth 2.0" says (token_url, client_id, scope), then remove the "# " below.\n'
            '# auth = "xoauth2"\n'
        ),
    ),
    "google": Provider(
        label="Google Workspace (Gmail)",
        source=(
            'Google Workspace Admin Help, "Send email from a printer, scanner, or app": '
            "smtp.gmail.com, port 587, STARTTLS, with the sending account and an app password "
            "(or OAuth). Or smtp-relay.gmail.com, the SMTP relay service your admin sets up "
            "in the Admin console (Apps > Google Workspace > Gmail > Routing)."
        ),
        smtp=[
            ("host", '"smtp.gmail.com"', ""),
            ("port", "587", ""),
            ("security", '"starttls"', ""),
            ("username", "{from}", "The Google account that sends: the From address."),
        ],
        limits=[
            (
                "per_day",
                "2000",
                'Google Workspace Admin Help, "Gmail sending limits in Google Workspace": '
                "2,000 messages a day per user (500 on a trial account). Through "
                'smtp-relay.gmail.com: 10,000 recipients a day per user ("SMTP relay service '
                'sending limits").',
            ),
        ],
    ),
    "ses": Provider(
        label="Amazon SES",
        source=(
            'Amazon SES Developer Guide, "Connecting to an Amazon SES SMTP endpoint": '
            "email-smtp.<region>.amazonaws.com, port 587, STARTTLS. The region is the one "
            "where you verified your domain (eu-west-2 is London)."
        ),
        smtp=[
            ("host", '"email-smtp.eu-west-2.amazonaws.com"', ""),
            ("port", "587", ""),
            ("security", '"starttls"', ""),
            (
                "username",
                '"SES-SMTP-USER-NAME"',
                "Replace with the SMTP user name from the SES console (SMTP settings > Create "
                "SMTP credentials), not your AWS access key; its password goes in "
                "MAILER_SMTP_PASSWORD.",
            ),
        ],
        limits=[
            (
                "per_second",
                "1",
                "Your account's maximum send rate (SES console: Account dashboard). A new "
                "account is in the sandbox: 1 message a second, 200 a day (Amazon SES "
                'Developer Guide, "Service quotas").',
            ),
            ("per_day", "200", "Your account's daily sending quota (the same dashboard)."),
        ],
    ),
    "postfix": Provider(
        label="a Postfix server on this machine",
        source=(
            "Postfix on this machine (Debian: apt-get install postfix) listens on localhost, "
            "port 25, and needs no login or encryption from a local program; it queues every "
            "message and delivers at its own pace, so mailer sets no sending limits for it."
        ),
        smtp=[
            ("host", '"localhost"', ""),
            ("port", "25", ""),
            ("security", '"none"', ""),
            ("username", None, "No login to a local Postfix."),
        ],
        limits=[],
    ),
}
