"""Hook factories that test workers load through SENTIMON_STREAM_HOOKS (they run inside the subprocess)."""

from __future__ import annotations

import time

SLOW_FIRST_BATCH_S = 9.0  # longer than the tests' 6 s session timeout


def slow_first_batch(settings):
    """A hook that makes the first batch take longer than the Kafka session timeout."""
    state = {"first": True}

    def hook(events, store) -> None:
        if state["first"]:
            state["first"] = False
            time.sleep(SLOW_FIRST_BATCH_S)

    return hook
