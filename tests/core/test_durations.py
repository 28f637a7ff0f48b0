"""The one duration parser, as the CLI and the alert rules both read it."""

from __future__ import annotations

import pytest

from sentimon.alerts.schema import parse_duration_ms as rule_duration_ms
from sentimon.core.durations import DurationError, parse_duration_ms
from sentimon.core.errors import UserError


@pytest.mark.parametrize(
    ("text", "ms"),
    [("250ms", 250), ("90s", 90_000), ("5m", 300_000), ("1.5h", 5_400_000), ("1h30m", 5_400_000),
     ("1h 30m", 5_400_000), (" 5 m ", 300_000), ("24h", 86_400_000), ("7d", 604_800_000), ("2w", 1_209_600_000),
     ("0m", 0)],
)  # fmt: skip
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


def test_cli_and_rules_agree() -> None:
    for text in ("1h30m", "90s", "7d", "250ms"):
        assert rule_duration_ms(text) == parse_duration_ms(text)


@pytest.mark.parametrize("bad", ["", "1", "h", "m5", "-5m", "5 minutes", "1y", "1h 30x", None, 5])
def test_non_durations_are_one_error_the_cli_and_pydantic_both_understand(bad) -> None:
    with pytest.raises(DurationError, match="not a duration; use e.g. 90s") as info:
        parse_duration_ms(bad)
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)
