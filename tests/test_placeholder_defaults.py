"""The columns a placeholder shows with no default that applies: empty cells read as nothing."""

from __future__ import annotations

import pytest

from mailer.issue import columns_without_default


@pytest.mark.parametrize(
    ("expression", "needed"),
    [
        ("recipient.first_name", ["first_name"]),
        ('recipient["first_name"]', ["first_name"]),
        ('recipient.first_name | default("colleague")', []),
        ("recipient.first_name | d('colleague') | upper", []),
        ('recipient.first_name or "colleague"', []),
        # title turns the missing value into "", which default() keeps ("Hello ,"):
        ('recipient.first_name | title | default("colleague")', ["first_name"]),
        ('recipient.first_name | title | default("colleague", true)', []),
        ('recipient.first_name | title | default("colleague", boolean=true)', []),
        ('recipient.title ~ " " ~ recipient.name | default("you")', ["title"]),
        ("recipient.default_greeting", ["default_greeting"]),
        ("recipient.nick | default(recipient.first_name)", ["first_name"]),
        ("mailer.unsubscribe_url", []),
    ],
)
def test_a_column_needs_a_value_unless_a_default_covers_it(
    expression: str, needed: list[str]
) -> None:
    assert list(columns_without_default([expression])) == needed


def test_each_column_is_named_with_the_first_expression_that_needs_it() -> None:
    expressions = ["recipient.team | default('all')", "recipient.team | upper", "recipient.team"]
    assert columns_without_default(expressions) == {"team": "recipient.team | upper"}
