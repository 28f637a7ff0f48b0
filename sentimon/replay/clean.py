"""What replays leave behind, and removing it (`sentimon replay clean`).

A replay writes, per model, Redis keys under ``replay:<tag>:`` (windows and alert states), a scored topic
``<topics.scored>.replay.<tag>``, and files: its report (.json/.md/.png) and an alert history database per model.
``record`` notes all of it in the registry hash ``replay:registry`` before the replay writes anything, so even an
interrupted replay can be cleaned. Replays from before the registry are found by their key and topic names.

Only what a replay created is removed: the recorded files, and a recorded folder only once it is empty.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sentimon.core.redact import mask_url
from sentimon.replay.errors import ReplayError
from sentimon.replay.run import KEY_ROOT, TOPIC_INFIX
from sentimon.streams.windows import count_or_unlink, glob_escape, scan_keys

REGISTRY_KEY = f"{KEY_ROOT}:registry"  # hash: namespace -> JSON of what its replays created
DB_SUFFIXES = ("", "-wal", "-shm", "-journal")  # SQLite writes these beside an alert history database


@dataclass
class Leftovers:
    """What one replay namespace created."""

    namespace: str
    tags: set[str] = field(default_factory=set)  # Redis keys replay:<tag>:*
    topics: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    dirs: set[str] = field(default_factory=set)  # folders the replay created: removed when empty
    registered: bool = True

    def merge(self, entry: dict) -> None:
        for name in ("tags", "topics", "files", "dirs"):
            getattr(self, name).update(entry.get(name, ()))

    def as_dict(self) -> dict:
        return {name: sorted(getattr(self, name)) for name in ("tags", "topics", "files", "dirs")}


def created_dirs(folder: Path) -> list[str]:
    """``folder`` and its ancestors that do not exist yet (deepest first): what creating it will create."""
    made: list[str] = []
    folder = folder.resolve()
    while not folder.exists():
        made.append(str(folder))
        folder = folder.parent
    return made


def record(client, leftovers: Leftovers) -> None:
    """Add ``leftovers`` to its namespace's registry entry (a namespace replayed twice keeps both runs' things)."""
    raw = client.hget(REGISTRY_KEY, leftovers.namespace)
    entry = Leftovers(leftovers.namespace)
    if raw:
        entry.merge(json.loads(raw))
    entry.merge(leftovers.as_dict())
    client.hset(
        REGISTRY_KEY, leftovers.namespace, json.dumps({**entry.as_dict(), "updated_ms": int(time.time() * 1000)})
    )


def namespace_of_tag(tag: str) -> str:
    """A tag is ``<namespace>.<model file name>``: the namespace of an unregistered (older) replay's tag."""
    return tag.rsplit(".", 1)[0] if "." in tag else tag


def group(
    registry: dict[str, dict], tags: Iterable[str], topics: Iterable[str], scored_topic: str
) -> dict[str, Leftovers]:
    """Namespaces -> what they created: the registry's entries, plus replay tags found in Redis key names and
    replay topics that no entry claims (grouped by ``namespace_of_tag``)."""
    found: dict[str, Leftovers] = {}
    for namespace, entry in registry.items():
        found.setdefault(namespace, Leftovers(namespace)).merge(entry)
    claimed_tags = {t for lo in found.values() for t in lo.tags}
    claimed_topics = {t for lo in found.values() for t in lo.topics}
    head = f"{scored_topic}{TOPIC_INFIX}"

    def unregistered(tag: str) -> Leftovers:
        namespace = namespace_of_tag(tag)
        return found.setdefault(namespace, Leftovers(namespace, registered=False))

    for tag in set(tags) - claimed_tags:
        unregistered(tag).tags.add(tag)
    for topic in set(topics) - claimed_topics:
        if topic.startswith(head) and len(topic) > len(head):
            unregistered(topic[len(head) :]).topics.add(topic)
    return found


def select(found: dict[str, Leftovers], namespace: str | None, every: bool) -> list[Leftovers]:
    """The namespaces to clean; a ReplayError naming the known ones when ``namespace`` is not among them."""
    if every == (namespace is not None):
        raise ReplayError(f"name one replay namespace or pass --all (not both); known: {_known(found)}")
    if every:
        return [found[n] for n in sorted(found)]
    if namespace not in found:
        raise ReplayError(f"no replay namespace {namespace!r}; known: {_known(found)}")
    return [found[namespace]]


def _known(found: dict[str, Leftovers]) -> str:
    return ", ".join(sorted(found)) if found else "none (no replay has left anything)"


# -- the shell: Redis, Kafka and the file system


def discover(client, admin, scored_topic: str) -> dict[str, Leftovers]:
    """Every replay namespace with something left in Redis, Kafka or the registry."""
    registry = {_text(k): json.loads(v) for k, v in client.hgetall(REGISTRY_KEY).items()}
    tags = {_text(k).split(":")[1] for k in scan_keys(client, f"{KEY_ROOT}:*:*", 1000)}
    return group(registry, tags, admin.list_topics(), scored_topic)


def remove(client, admin, leftovers: Leftovers, dry_run: bool = False) -> list[str]:
    """Remove (or with ``dry_run`` list) what ``leftovers`` names; one line per thing."""
    verb = "would remove" if dry_run else "removed"
    lines: list[str] = []
    existing = set(admin.list_topics())
    topics = sorted(t for t in leftovers.topics if t in existing)
    if topics and not dry_run:
        _delete_topics(admin, topics)
    lines += [f"{verb} topic {t}" for t in topics]
    for tag in sorted(leftovers.tags):
        pattern = f"{KEY_ROOT}:{glob_escape(tag)}:*"
        n = count_or_unlink(client, scan_keys(client, pattern, 1000), 1000, dry_run)
        if n:
            lines.append(f"{verb} {n:,} Redis keys {KEY_ROOT}:{tag}:*")
    for name in sorted(leftovers.files):
        path = Path(name)
        if path.is_file():
            if not dry_run:
                path.unlink()
            lines.append(f"{verb} file {path}")
    for name in sorted(leftovers.dirs, key=len, reverse=True):  # deepest first
        path = Path(name)
        if path.is_dir() and (dry_run or not any(path.iterdir())):
            if not dry_run:
                path.rmdir()
            lines.append(f"{verb} folder {path}" + (" (if empty)" if dry_run else ""))
    if not dry_run and leftovers.registered:
        client.hdel(REGISTRY_KEY, leftovers.namespace)
    return lines


def _delete_topics(admin, topics: list[str]) -> None:
    from kafka.errors import UnknownTopicOrPartitionError

    try:
        admin.delete_topics(topics)
    except UnknownTopicOrPartitionError:  # deleted meanwhile by someone else: what we wanted
        pass


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Services:
    """The Redis client and Kafka admin client clean-up needs, opened with short timeouts; a context manager."""

    def __init__(self, settings, timeout_s: float = 5.0):
        import redis
        from kafka.errors import KafkaError

        from sentimon.infra import kafka_clients
        from sentimon.infra.redis_client import connect

        self.client = connect(settings.stack)
        try:
            self.client.ping()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.client.close()
            raise ReplayError(
                f"Redis at {mask_url(settings.stack.redis)} is unreachable ({exc}); run `sentimon up`"
            ) from None
        timeout_ms = int(timeout_s * 1000)
        try:
            self.admin = kafka_clients.admin(settings, client_id="sentimon-clean", request_timeout_ms=timeout_ms,
                                             bootstrap_timeout_ms=timeout_ms)  # fmt: skip
        except KafkaError as exc:
            self.client.close()
            raise ReplayError(
                f"Kafka at {settings.stack.kafka_servers} is unreachable ({type(exc).__name__}); run `sentimon up`"
            ) from None

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.admin.close()
        finally:
            self.client.close()
