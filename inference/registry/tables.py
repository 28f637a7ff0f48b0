"""The registry's SQL tables (SQLAlchemy 2 typed ORM); the schema itself is made by the Alembic migrations beside
this file. ``sentimon_model_events`` is append-only: the code inserts into it and never updates or deletes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

VERSION_TABLE = "sentimon_registry_version"  # apart from other packages' Alembic histories in the same database


class Base(DeclarativeBase):
    pass


class VersionRow(Base):
    """One registered version: an immutable folder under the registry root."""

    __tablename__ = "sentimon_model_versions"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    manifest_version: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(1000))
    registered_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    registered_by: Mapped[str] = mapped_column(String(200))


class AliasRow(Base):
    """Where an alias points now (the history says where it pointed before)."""

    __tablename__ = "sentimon_model_aliases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    alias: Mapped[str] = mapped_column(String(16), primary_key=True)
    version: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class EventRow(Base):
    """Who did what to which model, when and why."""

    __tablename__ = "sentimon_model_events"
    __table_args__ = (Index("ix_sentimon_model_events_name", "name", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    name: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(16))  # register | promote | rollback | clear
    alias: Mapped[str | None] = mapped_column(String(16))
    version: Mapped[str | None] = mapped_column(String(16))
    previous: Mapped[str | None] = mapped_column(String(16))  # the alias's version before this change
    who: Mapped[str] = mapped_column(String(200))
    why: Mapped[str] = mapped_column(Text)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "at": iso(self.at), "name": self.name, "action": self.action, "alias": self.alias,
            "version": self.version, "previous": self.previous, "who": self.who, "why": self.why,
        }  # fmt: skip


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite keeps no zone; everything is written in UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
