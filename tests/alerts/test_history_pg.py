"""Alert history on the real PostgreSQL of the test stack, including two workers migrating at once."""

from __future__ import annotations

import threading

import pytest

from sentimon.alerts.history import History

from .history_cases import check_history_roundtrip, check_resolve_without_firing_row_is_kept

pytestmark = pytest.mark.integration


@pytest.fixture
def history(stack_settings):
    h = History(stack_settings.stack.database)
    yield h
    h.close()


def test_concurrent_first_use_migrates_once(stack_settings):
    histories = [History(stack_settings.stack.database) for _ in range(3)]
    errors: list[BaseException] = []

    def first_use(h: History) -> None:
        try:
            h.list(limit=1)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(h,)) for h in histories]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for h in histories:
        h.close()
    assert errors == []


def test_roundtrip(history, unique):
    check_history_roundtrip(history, unique)


def test_resolve_without_firing_row(history, unique):
    check_resolve_without_firing_row_is_kept(history, unique)
