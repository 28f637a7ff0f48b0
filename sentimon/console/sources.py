"""The console's connections: Redis windows, the alert history, the scored-topic tail and the worker's metrics.

Every read names what failed instead of raising, so the page shows "Redis unreachable" in place of a 500.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from sentimon.console import views
from sentimon.console.examples import ExampleBook, ScoredTail
from sentimon.console.status import worker_status
from sentimon.core.redact import mask_url

ALERTS_READ = 500  # newest episodes read per request: the board and one entity's chart need no more


class Sources:
    def __init__(self, settings, start_tail: bool = True, clock: Callable[[], float] = time.time):

        from sentimon.alerts.history import History
        from sentimon.infra.redis_client import connect
        from sentimon.streams.windows import WindowStore

        self.settings = settings
        self.clock = clock
        self.redis = connect(settings.stack)
        self.store = WindowStore.from_settings(self.redis, settings.windows)
        self.history = History(settings.stack.database)
        self.book = ExampleBook()
        self.tail = ScoredTail(settings, settings.topics.scored, self.book,
                               settings.console.examples_lookback)  # fmt: skip
        if start_tail:
            self.tail.start()
        host = settings.metrics.host if settings.metrics.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        self.metrics_url = f"http://{host}:{settings.metrics.port}/metrics"

    def close(self) -> None:
        self.tail.stop()
        self.history.close()
        self.redis.close()

    def wall_ms(self) -> int:
        return int(self.clock() * 1000)

    def alerts(self, entity: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        from sentimon.alerts.errors import HistoryError

        try:
            return self.history.list(entity=entity, limit=ALERTS_READ), None
        except HistoryError as exc:
            return [], str(exc)

    def windows(self, read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        import redis

        try:
            return read()
        except redis.RedisError as exc:
            return {"error": f"Redis at {mask_url(self.settings.stack.redis)} is unreachable ({exc}); start it with "
                             "`sentimon up` or set stack.redis_url"}  # fmt: skip

    def board(self) -> dict[str, Any]:
        alerts, alert_error = self.alerts()

        def read() -> dict[str, Any]:
            end = views.now_ms(self.store, self.wall_ms())
            return views.board(self.store, end, alerts, self.settings.console.board_limit)

        out = self.windows(read)
        out["alerts_error"] = alert_error
        return out

    def entity(self, entity: str, range_name: str, at_ms: int | None) -> dict[str, Any]:
        range_ms = views.RANGES_MS.get(range_name, views.DAY_MS)
        alerts, alert_error = self.alerts(entity)

        def read() -> dict[str, Any]:
            latest = views.now_ms(self.store, self.wall_ms())
            # A link from an alert centres the alert's time, but never reads past the newest event.
            end = latest if at_ms is None else min(latest, at_ms + range_ms // 4)
            return {
                "entity": entity,
                "now_ms": end,
                "range": range_name if range_name in views.RANGES_MS else "24h",
                "h1": views.summary(self.store.stats(entity, views.HOUR_MS, end)),
                "h24": views.summary(self.store.stats(entity, views.DAY_MS, end)),
                "timeline": views.timeline(self.store, entity, end, range_ms),
                "episodes": views.episodes(alerts, end),
                "alerts": alerts,
            }

        out = self.windows(read)
        out.update(self.book.for_entity(entity))
        out["alerts_error"] = alert_error
        out["examples_error"] = self.tail.error
        return out

    def alert_list(self, **filters: str | None) -> dict[str, Any]:
        alerts, error = self.alerts()
        return {"alerts": views.filter_alerts(alerts, **filters), "error": error}

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metrics_url": self.metrics_url, "worker": None, "worker_error": None}
        try:
            resp = httpx.get(self.metrics_url, timeout=3)
            resp.raise_for_status()
            out["worker"] = worker_status(resp.text)
        except httpx.HTTPError as exc:
            out["worker_error"] = f"no worker metrics at {self.metrics_url} ({exc}); is `sentimon worker` running?"
        out.update(self.windows(lambda: {"watermark": views.iso(self.store.watermark())}))
        out["examples_error"] = self.tail.error
        _, out["alerts_error"] = self.alerts()
        return out
