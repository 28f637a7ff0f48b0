"""Alert history in SQL (SQLAlchemy 2 typed ORM): one row per (rule, entity, episode).

The schema is managed by the Alembic migrations in ``alerts/migrations``, applied programmatically on first
use (no alembic.ini needed). The unique episode key makes recording idempotent: a second worker or a
re-delivered batch recording the same firing inserts nothing. ``record_delivery`` also keeps which sinks
confirmed each notification (``sentimon_alert_deliveries``) and stamps ``delivered_at`` on the episode once all
did; a row recorded while a sink was down keeps ``delivered_at`` NULL until the retry got through.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sentimon.alerts.errors import HistoryError
from sentimon.alerts.state import Notification
from sentimon.core.database import normalize_url, open_engine, safe_url, unreachable_detail, upgrade

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "sentimon_alerts_version"  # apart from other packages' Alembic histories in the same database
TABLE = "sentimon_alerts"
DELIVERIES_TABLE = "sentimon_alert_deliveries"
_MIGRATION_LOCK = 0x53454E54  # pg_advisory_xact_lock key: two workers starting together migrate one at a time


class Base(DeclarativeBase):
    pass


class AlertRecord(Base):
    __tablename__ = TABLE
    __table_args__ = (
        UniqueConstraint("rule", "entity", "started_at", name="uq_sentimon_alerts_episode"),
        Index("ix_sentimon_alerts_state_started", "state", "started_at"),
        Index("ix_sentimon_alerts_entity", "entity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(200))
    rule_kind: Mapped[str] = mapped_column(String(16))
    entity: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))  # firing | resolved
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    pending_since: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_notified_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    notifications: Mapped[int] = mapped_column(Integer, default=1)
    value: Mapped[float | None] = mapped_column(Float)
    baseline: Mapped[float | None] = mapped_column(Float)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "rule_kind": self.rule_kind,
            "entity": self.entity,
            "severity": self.severity,
            "state": self.state,
            "started_at": _iso(self.started_at),
            "pending_since": _iso(self.pending_since),
            "resolved_at": _iso(self.resolved_at),
            "last_notified_at": _iso(self.last_notified_at),
            "notifications": self.notifications,
            "value": self.value,
            "baseline": self.baseline,
            "payload": self.payload,
            "delivered_at": _iso(self.delivered_at),
        }


class DeliveryRecord(Base):
    """One sink's confirmation of one notification (its ``notification_id``)."""

    __tablename__ = DELIVERIES_TABLE
    __table_args__ = (UniqueConstraint("notification", "sink", name="uq_sentimon_alert_deliveries"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification: Mapped[str] = mapped_column(String(600))
    sink: Mapped[str] = mapped_column(String(600))
    delivered_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def _utc(ms: int | None) -> dt.datetime | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite keeps no zone; everything is written in UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class History:
    """The alert history behind ``url``; the schema is migrated to the latest revision on first use."""

    def __init__(self, url: str, connect_timeout_s: float = 5.0):
        self.url = normalize_url(url)
        self.engine: Engine = open_engine(self.url, connect_timeout_s, "alert database", HistoryError)
        self._migrated = False

    def _unreachable(self, exc: Exception) -> HistoryError:
        return HistoryError(
            f"cannot reach the alert database at {safe_url(self.url)} ({unreachable_detail(exc)}). Start the local "
            "stack with `sentimon up`, or point SENTIMON_DATABASE_URL at a reachable database (e.g. "
            "sqlite:///alerts.db)."
        )

    def migrate(self) -> None:
        """Apply the Alembic migrations up to head (idempotent; safe with several workers starting at once)."""
        try:
            upgrade(self.engine, MIGRATIONS_DIR, _MIGRATION_LOCK)
        except OperationalError as exc:
            raise self._unreachable(exc) from None
        self._migrated = True

    def _session(self) -> Session:
        if not self._migrated:
            self.migrate()
        return Session(self.engine, expire_on_commit=False)

    def record(self, note: Notification, payload: dict[str, Any]) -> bool:
        """Store one notification; False when it was already recorded (another worker, a re-delivery)."""
        try:
            with self._session() as session:
                if note.kind == "firing":
                    return self._insert(session, note, payload, "firing")
                key = (
                    (AlertRecord.rule == note.rule_id)
                    & (AlertRecord.entity == note.entity)
                    & (AlertRecord.started_at == _utc(note.started_ms))
                )
                if note.kind == "resolved":
                    changes = {
                        "state": "resolved",
                        "resolved_at": _utc(note.resolved_ms),
                        "last_notified_at": _utc(note.at_ms),
                        "notifications": AlertRecord.notifications + 1,
                    }
                    done = cast(CursorResult, session.execute(
                        update(AlertRecord).where(key & (AlertRecord.state == "firing")).values(**changes)
                    ))
                    if done.rowcount == 0 and session.scalar(select(AlertRecord.id).where(key)) is None:
                        # The firing row never made it (database down then): keep the episode anyway.
                        return self._insert(session, note, payload, "resolved")
                else:  # renotify
                    done = cast(CursorResult, session.execute(
                        update(AlertRecord)
                        .where(key & (AlertRecord.last_notified_at < _utc(note.at_ms)))
                        .values(last_notified_at=_utc(note.at_ms), notifications=AlertRecord.notifications + 1,
                                value=note.observation.value, baseline=note.observation.baseline)
                    ))  # fmt: skip
                session.commit()
                return bool(done.rowcount)
        except OperationalError as exc:
            raise self._unreachable(exc) from None

    def record_delivery(
        self, note: Notification, payload: dict[str, Any], sinks: Sequence[str], complete: bool
    ) -> bool:
        """Record the notification (if not yet), the ``sinks`` that confirmed it, and when ``complete`` (every
        configured sink confirmed) stamp the episode delivered. True when the notification was new."""
        new = self.record(note, payload)
        try:
            with self._session() as session:
                have = set(session.scalars(select(DeliveryRecord.sink)
                                           .where(DeliveryRecord.notification == note.dedup_key)))  # fmt: skip
                for sink in dict.fromkeys(sinks):
                    if sink not in have:
                        session.add(DeliveryRecord(notification=note.dedup_key, sink=sink))
                if complete:
                    session.execute(
                        update(AlertRecord)
                        .where((AlertRecord.rule == note.rule_id) & (AlertRecord.entity == note.entity)
                               & (AlertRecord.started_at == _utc(note.started_ms)))
                        .values(delivered_at=func.now())
                    )  # fmt: skip
                try:
                    session.commit()
                except IntegrityError:  # another worker recorded the same confirmations first
                    session.rollback()
        except OperationalError as exc:
            raise self._unreachable(exc) from None
        return new

    def deliveries(self, notification_id: str) -> set[str]:
        """The sinks that confirmed one notification."""
        try:
            with self._session() as session:
                return set(session.scalars(select(DeliveryRecord.sink)
                                           .where(DeliveryRecord.notification == notification_id)))  # fmt: skip
        except OperationalError as exc:
            raise self._unreachable(exc) from None

    def _insert(self, session: Session, note: Notification, payload: dict[str, Any], state: str) -> bool:
        obs = note.observation
        session.add(
            AlertRecord(
                rule=note.rule_id,
                rule_kind=str(payload.get("rule_kind", "")),
                entity=note.entity,
                severity=note.severity,
                state=state,
                started_at=_utc(note.started_ms),
                pending_since=_utc(note.pending_since_ms),
                resolved_at=_utc(note.resolved_ms),
                last_notified_at=_utc(note.at_ms),
                notifications=1,
                value=obs.value,
                baseline=obs.baseline,
                payload=payload,
            )
        )
        try:
            session.commit()
            return True
        except IntegrityError:
            session.rollback()
            return False

    def list(self, state: str | None = None, entity: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Most recent episodes first, optionally only one state and/or entity."""
        query = select(AlertRecord).order_by(AlertRecord.started_at.desc(), AlertRecord.id.desc()).limit(limit)
        if state:
            query = query.where(AlertRecord.state == state)
        if entity:
            query = query.where(AlertRecord.entity == entity)
        try:
            with self._session() as session:
                return [row.as_dict() for row in session.scalars(query)]
        except OperationalError as exc:
            raise self._unreachable(exc) from None
        except SQLAlchemyError as exc:
            raise HistoryError(f"reading alert history from {safe_url(self.url)} failed: {exc}") from None

    def close(self) -> None:
        self.engine.dispose()
