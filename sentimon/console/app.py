"""The console's ASGI app (Starlette): one HTML shell, JSON endpoints the page polls, static files, /metrics.

Pages: ``/`` (entity board), ``/entity/<name>`` (timeline, alert episodes, terms, examples), ``/alerts``
(filterable list with payloads), ``/status`` (worker, model, lag). With a token, every request needs it once
(``?token=``, then a cookie) or as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sentimon.console import views
from sentimon.console.sources import Sources

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "sentimon_console"


class TokenGate(BaseHTTPMiddleware):
    def __init__(self, app: Any, token: str):
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        given = request.query_params.get("token")
        if given is not None and hmac.compare_digest(given, self.token):
            # Drop the token from the address bar (and from what gets copied around) once the cookie is set.
            query = "&".join(f"{k}={v}" for k, v in request.query_params.multi_items() if k != "token")
            response: Response = RedirectResponse(request.url.path + (f"?{query}" if query else ""), 303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            return response
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        for candidate in (request.cookies.get(COOKIE, ""), bearer):
            if candidate and hmac.compare_digest(candidate, self.token):
                return await call_next(request)
        return PlainTextResponse("sentimon console: open the URL with ?token=<console.token> once", 401)


class _EntityCollector(Collector):
    """Top-N entities (``console.board_limit``) and firing alerts as gauges: what the Grafana entity and alert
    dashboards chart. The cap keeps the entity label bounded."""

    def __init__(self, sources: Sources):
        self.sources = sources

    def collect(self):
        board = self.sources.board()
        fams = {
            "mentions": GaugeMetricFamily("sentimon_entity_mentions", "Mentions in the window (top-N entities).",
                                          labels=["entity", "window"]),
            "mean_score": GaugeMetricFamily("sentimon_entity_mean_score", "Mean sentiment score (-1..1).",
                                            labels=["entity", "window"]),
            "negative": GaugeMetricFamily("sentimon_entity_negative_ratio", "Share of negative mentions (0..1).",
                                          labels=["entity", "window"]),
            "positive": GaugeMetricFamily("sentimon_entity_positive_ratio", "Share of positive mentions (0..1).",
                                          labels=["entity", "window"]),
        }  # fmt: skip
        firing = GaugeMetricFamily("sentimon_alerts_firing", "Alert episodes firing now, by severity and rule kind.",
                                   labels=["severity", "rule_kind"])  # fmt: skip
        for row in board.get("entities", []):
            for window in ("h1", "h24"):
                for field, fam in fams.items():
                    value = row[window][field]
                    if value is not None:
                        fam.add_metric([row["entity"], "1h" if window == "h1" else "24h"], value)
        alerts, _ = self.sources.alerts()
        counts: dict[tuple[str, str], int] = {}
        for a in alerts:
            if a.get("state") == "firing":
                key = (a.get("severity", ""), a.get("rule_kind", ""))
                counts[key] = counts.get(key, 0) + 1
        for (severity, kind), n in sorted(counts.items()):
            firing.add_metric([severity, kind], n)
        yield from fams.values()
        yield firing


def create_app(settings, sources: Sources | None = None, token: str | None = None) -> Starlette:
    """The console app over ``settings``' stack; ``token`` (default: ``console.token``) guards every route."""
    src = sources or Sources(settings)
    registry = CollectorRegistry()
    registry.register(_EntityCollector(src))
    shell = STATIC / "index.html"

    async def page(request: Request) -> Response:
        return FileResponse(shell, headers={"cache-control": "no-store"})

    def api_board(request: Request) -> Response:
        return JSONResponse(src.board())

    def api_entity(request: Request) -> Response:
        at = request.query_params.get("at")
        at_ms = views.parse_iso(at) if at and not at.isdigit() else (int(at) if at else None)
        return JSONResponse(src.entity(request.path_params["name"], request.query_params.get("range", "24h"), at_ms))

    def api_alerts(request: Request) -> Response:
        q = request.query_params
        return JSONResponse(src.alert_list(state=q.get("state") or None, severity=q.get("severity") or None,
                                           entity=q.get("entity") or None, kind=q.get("kind") or None,
                                           text=q.get("q") or None))  # fmt: skip

    def api_status(request: Request) -> Response:
        return JSONResponse(src.status())

    def api_config(request: Request) -> Response:
        return JSONResponse({"refresh_s": settings.console.refresh_s})

    def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    routes = [
        Route("/", page),
        Route("/alerts", page),
        Route("/status", page),
        Route("/entity/{name:path}", page),
        Route("/api/board", api_board),
        Route("/api/entity/{name:path}", api_entity),
        Route("/api/alerts", api_alerts),
        Route("/api/status", api_status),
        Route("/api/config", api_config),
        Route("/metrics", metrics),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    token = token if token is not None else settings.console.token
    middleware = [Middleware(TokenGate, token=token)] if token else []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if sources is None:  # ours to close
            src.close()

    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
