"""SpamAssassin's local rules on the sample message: the hidden preheader costs nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_message import NOW, SAM, factory, sample
from tests.test_spamassassin import pytestmark as needs_spamassassin
from tests.test_spamassassin import score

pytestmark = needs_spamassassin


@pytest.mark.slow
def test_a_built_message_scores_at_most_one_point(newsletter: Path, tmp_path: Path) -> None:
    config, rendered = sample(newsletter)
    points, rules = score(factory(config, rendered).build(SAM, now=NOW).data, tmp_path)
    # The preheader was white text on white (HTML_FONT_LOW_CONTRAST, 0.7): now it is hidden
    # by size and overflow, with no colour of its own.
    assert "HTML_FONT_LOW_CONTRAST" not in rules, rules
    assert points <= 1.0, rules
