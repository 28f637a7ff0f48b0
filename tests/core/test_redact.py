"""Masking secrets in URLs and settings: pure functions, checked on the URL shapes sentimon is given."""

from __future__ import annotations

import pytest

from sentimon.core.database import safe_url
from sentimon.core.redact import host_only, mask_url, mask_urls_in
from sentimon.core.settings import load_settings


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("rediss://app:s3cret@redis.internal:6380/1", "rediss://app:***@redis.internal:6380/1"),
        ("postgresql+psycopg://app:s3cret@db:5432/sentimon", "postgresql+psycopg://app:***@db:5432/sentimon"),
        # Unencoded '@', '/' and ':' in a password: a strict parser gives up on these, the mask must not.
        ("redis://:s3cr@t/x:y@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("postgresql://app@db/x?password=s3cret&sslmode=require", "postgresql://app@db/x?password=***&sslmode=require"),
        ("https://hooks.example.com/alert?token=s3cret&team=ops", "https://hooks.example.com/alert?token=***&team=ops"),
        ("https://hooks.example.com/alert?api_key=s3cret", "https://hooks.example.com/alert?api_key=***"),
        # Nothing secret: unchanged.
        ("redis://127.0.0.1:16379/0", "redis://127.0.0.1:16379/0"),
        (
            "postgresql+psycopg://sentimon@127.0.0.1:15432/sentimon",
            "postgresql+psycopg://sentimon@127.0.0.1:15432/sentimon",
        ),
        ("sqlite:////tmp/alerts.db", "sqlite:////tmp/alerts.db"),
        ("127.0.0.1:9092,broker2:9092", "127.0.0.1:9092,broker2:9092"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert safe_url(url) == masked  # the database module's name for the same mask


def test_host_only_drops_the_path_and_query_a_webhook_token_lives_in() -> None:
    assert host_only("https://hooks.example.com/services/T0/B0/s3cret") == "https://hooks.example.com"
    assert host_only("http://user:s3cret@10.0.0.5:8080/hook?token=x") == "http://10.0.0.5:8080"
    assert host_only("https://[::1]:8443/a") == "https://[::1]:8443"
    assert host_only("not a url") == "<unparsable URL>"


def test_mask_urls_in_text() -> None:
    text = "Error connecting to redis://:s3cret@h:1/0. Then 'postgresql://a:b2@h/db' failed"
    assert mask_urls_in(text) == "Error connecting to redis://:***@h:1/0. Then 'postgresql://a:***@h/db' failed"


def test_settings_repr_shows_no_secret() -> None:
    settings = load_settings(
        redis_url="redis://:redis-s3cret@h:1/0",
        database_url="postgresql://app:db-s3cret@h/db",
        alerts={"webhooks": ["https://hooks.example.com/T0/B0/hook-s3cret"]},
        console={"token": "console-s3cret"},
    )
    for text in (repr(settings), str(settings), repr(settings.stack), repr(settings.alerts)):
        assert "s3cret" not in text
    assert "redis://:***@h:1/0" in repr(settings.stack)
    assert "https://hooks.example.com" in repr(settings.alerts)
    assert settings.stack.redis_url == "redis://:redis-s3cret@h:1/0"  # the value itself is untouched
