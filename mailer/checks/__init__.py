"""`mailer check`: the final email checked as it will be sent, one module per check."""

from mailer.checks.archive import archive_warnings
from mailer.checks.base import Finding
from mailer.checks.examples import check_example_values, refuse_example_values
from mailer.checks.run import (
    CHECKS,
    check_email,
    check_issue,
    email_findings,
    findings_json,
    has_errors,
    locate_findings,
)

__all__ = [
    "CHECKS",
    "Finding",
    "archive_warnings",
    "check_email",
    "check_example_values",
    "check_issue",
    "email_findings",
    "findings_json",
    "has_errors",
    "locate_findings",
    "refuse_example_values",
]
