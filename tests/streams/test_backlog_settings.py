"""Settings checked at start for backlogs: a future-timestamp limit at or above the allowed lateness is
refused (one early clock would make the on-time events of its partition late), naming both settings."""

from __future__ import annotations

import pytest

from sentimon.core.settings import ConfigError, load_settings


def test_future_limit_must_be_below_the_allowed_lateness(monkeypatch):
    monkeypatch.delenv("SENTIMON_CONFIG", raising=False)
    with pytest.raises(ConfigError, match=r"stream.max_future_ms \(600000\) must be below windows.allowed_lateness_ms"):
        load_settings(stream={"max_future_ms": 600_000}, windows={"allowed_lateness_ms": 600_000})
    monkeypatch.setenv("SENTIMON_WINDOWS__ALLOWED_LATENESS_MS", "60000")
    with pytest.raises(ConfigError, match="SENTIMON_STREAM__MAX_FUTURE_MS"):
        load_settings()
    ok = load_settings(stream={"max_future_ms": 30_000})
    assert (ok.stream.max_future_ms, ok.windows.allowed_lateness_ms) == (30_000, 60_000)
