"""``Registry``: immutable bundle versions on disk, aliases and an append-only history in SQL, aliases mirrored
to Redis (a pointer key per alias and a notification on the channel) for workers to follow.

The SQL database is the source of truth; Redis only mirrors it. An alias change commits first, then mirrors:
when Redis is down the command fails naming the idempotent command that mirrors again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from sentimon.core.database import open_engine, safe_url, unreachable_detail, upgrade
from sentimon.inference.bundle import read_manifest
from sentimon.inference.registry.refs import (
    ALIASES,
    AliasEvent,
    Ref,
    RegistryError,
    bundle_files,
    check_name,
    content_version,
    parse_ref,
    rollback_target,
    who,
)
from sentimon.inference.registry.tables import AliasRow, EventRow, VersionRow, iso

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_LOCK = 0x53524547  # pg_advisory_xact_lock key: migrations and alias changes run one at a time


@dataclass(frozen=True)
class Registered:
    ref: Ref
    path: Path
    new: bool  # False: identical content was registered before (nothing copied, nothing recorded)


@dataclass(frozen=True)
class AliasChange:
    name: str
    alias: str
    version: str | None  # None: the alias was cleared
    previous: str | None
    changed: bool  # False: the alias already pointed there (mirrored again, nothing recorded)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Registry:
    """The registry under ``root`` with its aliases and history in ``database``; ``redis`` (a redis-py client,
    optional) receives the alias mirror under ``prefix``."""

    def __init__(
        self, root: Path, database: str, redis: Any = None, prefix: str = "sentimon:registry",
        connect_timeout_s: float = 5.0,
    ) -> None:  # fmt: skip
        self.root = Path(root)
        self.url = database
        self.redis = redis
        self.prefix = prefix
        self.engine = open_engine(database, connect_timeout_s, "model registry database", RegistryError)
        self._migrated = False

    # -- database plumbing -------------------------------------------------------------------------------------

    def _unreachable(self, exc: Exception) -> RegistryError:
        return RegistryError(
            f"cannot reach the model registry database at {safe_url(self.url)} ({unreachable_detail(exc)}). Start "
            "the local stack with `sentimon up`, or point SENTIMON_INFERENCE__REGISTRY_DATABASE (default: "
            "SENTIMON_STACK__DATABASE_URL) at a reachable database"
        )

    def migrate(self) -> None:
        """Create or upgrade the registry tables (idempotent; safe with several processes at once)."""
        try:
            upgrade(self.engine, MIGRATIONS_DIR, _LOCK)
        except OperationalError as exc:
            raise self._unreachable(exc) from None
        self._migrated = True

    @contextmanager
    def _session(self, lock: bool = False) -> Iterator[Session]:
        """A session; ``lock`` serializes writers on PostgreSQL (SQLite serializes writes itself)."""
        if not self._migrated:
            self.migrate()
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                if lock and session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
                    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
                yield session
        except OperationalError as exc:
            raise self._unreachable(exc) from None

    # -- versions ----------------------------------------------------------------------------------------------

    def version_dir(self, name: str, version: str) -> Path:
        return self.root / name / version

    def has_versions(self) -> bool:
        """Whether any version folder exists (answered from disk, without the database)."""
        return self.root.is_dir() and any(
            v.is_dir() and not v.name.startswith(".") for n in self.root.iterdir() if n.is_dir() for v in n.iterdir()
        )

    def register(self, path: Path, name: str | None = None, why: str = "", by: str | None = None) -> Registered:
        """Copy the bundle at ``path`` into its content-hashed version folder (checksums verified first) and
        record it; identical content already registered under ``name`` returns its version unchanged."""
        manifest = read_manifest(Path(path))  # BundleError: not a bundle, or a file does not match its checksum
        name = check_name(name or manifest.name)
        version = content_version(Path(path))
        with self._session(lock=True) as session:  # reach the database before copying anything
            row = session.get(VersionRow, (name, version))
            dest = self.version_dir(name, version)
            if row is not None and dest.is_dir():
                return Registered(Ref(name, version=version), dest, new=False)
            if not dest.is_dir():
                self._copy(Path(path), dest, version)
            if row is None:
                now, by = _now(), by or who()
                source = str(Path(path).resolve())
                session.add(VersionRow(name=name, version=version, kind=manifest.kind,
                                       manifest_version=manifest.version, size_bytes=manifest.size_bytes,
                                       source=source, registered_at=now, registered_by=by))  # fmt: skip
                session.add(EventRow(at=now, name=name, action="register", version=version, who=by, why=why))
                try:
                    session.commit()
                except IntegrityError:  # another process registered the same content a moment ago
                    session.rollback()
                    return Registered(Ref(name, version=version), dest, new=False)
        return Registered(Ref(name, version=version), dest, new=True)

    def _copy(self, src: Path, dest: Path, version: str) -> None:
        """Copy into a temporary sibling, check the copy hashes to ``version``, then rename: a version folder
        either does not exist or is complete. Files are made read-only: a version never changes."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".incoming-{version}-{uuid.uuid4().hex[:8]}"
        try:
            for rel in bundle_files(src):
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / rel, tmp / rel)
                os.chmod(tmp / rel, 0o444)
            copied = content_version(tmp)
            if copied != version:
                raise RegistryError(f"{src} changed while it was being registered; register it again")
            try:
                tmp.rename(dest)
            except OSError:
                if not dest.is_dir():  # not a concurrent copy of the same content
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def versions(self, name: str | None = None) -> list[dict[str, Any]]:
        """Registered versions, oldest first, each with the aliases that point at it."""
        with self._session() as session:
            query = select(VersionRow).order_by(VersionRow.name, VersionRow.registered_at)
            rows = list(session.scalars(query.where(VersionRow.name == name) if name else query))
            pointers: dict[tuple[str, str], list[str]] = {}
            for a in session.scalars(select(AliasRow).order_by(AliasRow.alias)):
                pointers.setdefault((a.name, a.version), []).append(a.alias)
        return [{"ref": f"{r.name}@{r.version}", "name": r.name, "version": r.version, "kind": r.kind,
                 "manifest_version": r.manifest_version, "size_bytes": r.size_bytes, "source": r.source,
                 "registered_at": iso(r.registered_at), "registered_by": r.registered_by,
                 "aliases": pointers.get((r.name, r.version), []),
                 "path": str(self.version_dir(r.name, r.version))} for r in rows]  # fmt: skip

    def names(self) -> list[str]:
        with self._session() as session:
            return list(session.scalars(select(VersionRow.name).distinct().order_by(VersionRow.name)))

    # -- references and aliases --------------------------------------------------------------------------------

    def aliases(self, name: str) -> dict[str, str]:
        with self._session() as session:
            return {a.alias: a.version for a in session.scalars(select(AliasRow).where(AliasRow.name == name))}

    def version_of(self, ref: Ref | str) -> Ref:
        """The version a reference names (an alias looked up in the database); RegistryError when unknown."""
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        with self._session() as session:
            if ref.version is not None:
                if session.get(VersionRow, (ref.name, ref.version)) is None:
                    raise self._unknown(session, ref)
                return ref
            row = session.get(AliasRow, (ref.name, ref.alias))
            if row is None:
                if session.scalar(select(VersionRow.name).where(VersionRow.name == ref.name).limit(1)) is None:
                    raise self._unknown(session, ref)
                raise RegistryError(
                    f"{ref.name} has no {ref.alias}; set it with `sentimon models promote {ref.name}@VERSION"
                    + (" --to candidate`" if ref.alias == "candidate" else "`")
                )
            return Ref(ref.name, version=row.version)

    def _unknown(self, session: Session, ref: Ref) -> RegistryError:
        names = list(session.scalars(select(VersionRow.name).distinct().order_by(VersionRow.name)))
        if ref.name not in names:
            known = ", ".join(names) or "none yet"
            return RegistryError(f"no model named {ref.name!r} in the registry (registered: {known}); "
                                 "add one with `sentimon models register PATH --name NAME`")  # fmt: skip
        versions = session.scalars(select(VersionRow.version).where(VersionRow.name == ref.name))
        return RegistryError(f"{ref} is not registered (versions of {ref.name}: {', '.join(versions)}); "
                             "see `sentimon models list`")  # fmt: skip

    def path_of(self, ref: Ref | str) -> Path:
        """The version folder a reference names; a version reference is answered from disk alone."""
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        return self.path_on_disk(self.root, ref if ref.version is not None else self.version_of(ref))

    @staticmethod
    def path_on_disk(root: Path, ref: Ref) -> Path:
        """The folder of a version reference under ``root``; RegistryError naming the versions there when absent."""
        path = Path(root) / ref.name / str(ref.version)
        if not path.is_dir():
            here = (
                sorted(p.name for p in path.parent.iterdir() if p.is_dir() and not p.name.startswith("."))[:10]
                if path.parent.is_dir()
                else []
            )
            known = f"versions of {ref.name} there: {', '.join(here)}" if here else f"no versions of {ref.name} there"
            raise RegistryError(
                f"{ref} is not registered in {root} ({known}): see `sentimon models list`, register the bundle with "
                "`sentimon models register`, or point SENTIMON_INFERENCE__REGISTRY_DIR at the registry it is in"
            )
        return path

    def promote(self, ref: Ref | str, alias: str = "champion", why: str = "", by: str | None = None) -> AliasChange:
        """Point ``alias`` of the model at the version ``ref`` names (``NAME@candidate`` works: the candidate
        becomes champion). A promoted candidate stops being the candidate."""
        if alias not in ALIASES:
            raise RegistryError(f"unknown alias {alias!r}; use one of {', '.join(ALIASES)}")
        target = self.version_of(ref)
        change = self._set(target.name, alias, target.version, "promote", why, by or who())
        if alias == "champion" and self.aliases(target.name).get("candidate") == target.version:
            self._set(target.name, "candidate", None, "clear", why or "promoted to champion", by or who())
        return change

    def rollback(self, name: str, why: str = "", by: str | None = None) -> AliasChange:
        """Make the previous champion the champion again, in one step."""
        with self._session() as session:
            events = session.scalars(select(EventRow).where((EventRow.name == name) & (EventRow.alias == "champion"))
                                     .order_by(EventRow.id))  # fmt: skip
            line = [AliasEvent(e.action, e.version) for e in events]
            if not line and session.scalar(select(VersionRow.name).where(VersionRow.name == name).limit(1)) is None:
                raise self._unknown(session, Ref(name, alias="champion"))
        _, target = rollback_target(name, line)
        return self._set(name, "champion", target, "rollback", why, by or who())

    def clear(self, name: str, alias: str = "candidate", why: str = "", by: str | None = None) -> AliasChange:
        """Remove the candidate alias (an aborted canary clears it). The champion is never cleared: a model in
        service always has one; roll back or promote another version instead."""
        if alias != "candidate":
            raise RegistryError(f"only the candidate can be cleared, not {alias!r}; use `sentimon models rollback`")
        return self._set(name, alias, None, "clear", why, by or who())

    def _set(self, name: str, alias: str, version: str | None, action: str, why: str, by: str) -> AliasChange:
        with self._session(lock=True) as session:
            row = session.get(AliasRow, (name, alias))
            previous = row.version if row else None
            changed = previous != version
            if changed:
                now = _now()
                if version is None:
                    session.execute(delete(AliasRow).where((AliasRow.name == name) & (AliasRow.alias == alias)))
                elif row is None:
                    session.add(AliasRow(name=name, alias=alias, version=version, updated_at=now))
                else:
                    row.version, row.updated_at = version, now
                session.add(EventRow(at=now, name=name, action=action, alias=alias, version=version,
                                     previous=previous, who=by, why=why))  # fmt: skip
                session.commit()
        change = AliasChange(name, alias, version, previous, changed)
        self._mirror(change, action)
        return change

    # -- the Redis mirror --------------------------------------------------------------------------------------

    def pointer_key(self, name: str, alias: str) -> str:
        return f"{self.prefix}:{name}:{alias}"

    @property
    def channel(self) -> str:
        return f"{self.prefix}:changes"

    def _mirror(self, change: AliasChange, action: str) -> None:
        if self.redis is None:
            return
        from redis import RedisError

        key = self.pointer_key(change.name, change.alias)
        note = {"name": change.name, "alias": change.alias, "version": change.version, "previous": change.previous,
                "action": action}  # fmt: skip
        try:
            pipe = self.redis.pipeline()
            pipe.set(key, change.version) if change.version else pipe.delete(key)
            pipe.publish(self.channel, json.dumps(note))
            pipe.execute()
        except RedisError as exc:
            to = " --to candidate" if change.alias == "candidate" else ""
            again = f"sentimon models promote {change.name}@{change.version}{to}" if change.version else "it"
            raise RegistryError(
                f"{change.name} {change.alias} is {change.version or 'cleared'} in the registry database, but "
                f"mirroring it to Redis failed ({exc}), so workers following Redis do not see it yet: start Redis "
                f"(`sentimon up`) and run `{again}` again (it only mirrors)"
            ) from None

    # -- history -----------------------------------------------------------------------------------------------

    def history(self, name: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """The events, oldest first (the last ``limit`` of them); ordered by insertion, not by clock."""
        query = select(EventRow).order_by(EventRow.id.desc())
        if name:
            query = query.where(EventRow.name == name)
        if limit:
            query = query.limit(limit)
        with self._session() as session:
            return [e.as_dict() for e in reversed(list(session.scalars(query)))]

    def close(self) -> None:
        self.engine.dispose()
