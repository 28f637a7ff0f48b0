"""Dropping windows against the real Redis: `WindowStore.forget` / `drop_all` (SCAN + UNLINK) delete exactly
one entity's or one prefix's window keys, and `sentimon forget` asks before it deletes."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

from sentimon.streams.windows import WindowStore, glob_escape
from sentimon.streams.worker import connect_redis
from tests.streams.test_cli import base_env, sentimon

pytestmark = pytest.mark.integration
HOUR = 3_600_000


@dataclass(frozen=True)
class Ev:
    message_id: str
    ts_ms: int
    entities: list[str] = field(default_factory=list)
    label: str = "negative"
    score: float = -0.5


def _store(stack_settings, prefix: str) -> WindowStore:
    return WindowStore.from_settings(connect_redis(stack_settings),
                                     stack_settings.windows.model_copy(update={"prefix": prefix}))  # fmt: skip


def _fill(store: WindowStore, now: int) -> None:
    # Three hours, so each entity has minute buckets and hourly rollups; "AAPL:x" shares AAPL's key head.
    events = [
        Ev(f"{store.prefix}-{i}", now - i * 60_000, [["AAPL"], ["TSLA"], ["AAPL:x"]][i % 3])
        for i in reversed(range(180))
    ]  # fmt: skip  (oldest first: newer events would make older ones late)
    store.apply(events)


def _keys(store: WindowStore, pattern: str = "*") -> set[str]:
    return {k.decode() for k in store.redis.scan_iter(match=glob_escape(store.prefix) + ":" + pattern)}


def test_forget_drops_one_entity_and_nothing_else(stack_settings, unique) -> None:
    now = int(time.time() * 1000)
    store = _store(stack_settings, unique)
    _fill(store, now)
    store.redis.set(f"{unique}:alerts:state", "kept")  # alert states may share the prefix
    before = _keys(store)
    aapl = {k for k in before if k.startswith((f"{unique}:b:AAPL:", f"{unique}:h:AAPL:")) and ":x:" not in k}
    assert len(aapl) > 60  # 60 minute buckets and 3-4 hourly rollups
    assert store.forget(["AAPL"], dry_run=True) == len(aapl) and _keys(store) == before
    assert store.forget(["AAPL"], batch=7) == len(aapl)  # several UNLINK batches
    assert _keys(store) == before - aapl
    assert store.stats("AAPL", 4 * HOUR, now + 1).count == 0
    assert store.stats("TSLA", 4 * HOUR, now + 1).count == 60 and store.stats("AAPL:x", 4 * HOUR, now + 1).count == 60
    assert store.entities() == ["AAPL:x", "TSLA"]
    assert store.forget(["AAPL"]) == 0  # already gone


def test_drop_all_drops_every_window_key_of_the_prefix_only(stack_settings, unique) -> None:
    now = int(time.time() * 1000)
    store = _store(stack_settings, f"{unique}:a?")  # a glob character: must not match the sibling prefix
    sibling = _store(stack_settings, f"{unique}:ab")
    _fill(store, now)
    _fill(sibling, now)
    store.redis.set(f"{unique}:a?:alerts:state", "kept")
    sibling_keys = _keys(sibling)
    n = len(_keys(store)) - 1
    assert store.drop_all(dry_run=True) == n
    assert store.drop_all(batch=10) == n
    assert _keys(store) == {f"{unique}:a?:alerts:state"}
    assert store.entities() == [] and store.watermark() is None
    assert _keys(sibling) == sibling_keys


def _env(stack_settings, prefix: str) -> dict[str, str]:
    return base_env(SENTIMON_REDIS_URL=stack_settings.stack.redis, SENTIMON_WINDOWS__PREFIX=prefix)


def test_forget_cli(stack_settings, unique) -> None:
    now = int(time.time() * 1000)
    store = _store(stack_settings, unique)
    _fill(store, now)
    env = _env(stack_settings, unique)
    before = _keys(store)

    refused = sentimon("forget", "aapl", env=env, stdin=b"y\n")  # not a terminal: no --yes, no deletion
    assert refused.returncode == 2 and refused.stdout == b""
    assert refused.stderr.decode().strip().splitlines() == [
        "'aapl' -> AAPL (same name)",
        (
            f"error: refusing to delete the windows of AAPL under prefix '{unique}' without confirmation: stdin is "
            "not a terminal; pass --yes"
        ),
    ]
    assert _keys(store) == before

    unknown = sentimon("forget", "nvdx", "--yes", env=env)
    assert unknown.returncode == 2 and b"no entity 'nvdx'" in unknown.stderr
    nothing = sentimon("forget", "--yes", env=env)
    assert nothing.returncode == 2 and b"pass --all" in nothing.stderr
    both = sentimon("forget", "AAPL", "--all", "--yes", env=env)
    assert both.returncode == 2 and _keys(store) == before

    done = sentimon("forget", "$aapl", "tsla", "--yes", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().startswith("deleted ") and "AAPL, TSLA" in done.stdout.decode()
    deleted = int(done.stdout.split()[1].replace(b",", b""))
    assert deleted == len(before) - len(_keys(store)) > 100
    assert store.entities() == ["AAPL:x"]

    every = sentimon("forget", "--prefix", unique, "--all", "--yes", env=base_env(
        SENTIMON_REDIS_URL=stack_settings.stack.redis))  # fmt: skip
    assert every.returncode == 0, every.stderr
    assert every.stdout.decode().startswith("deleted ") and not _keys(store)


def _on_a_terminal(args: list[str], env: dict[str, str], answer: bytes) -> subprocess.CompletedProcess:
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "sentimon", *args], env=env, stdin=follower,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        os.close(follower)
        os.write(leader, answer)
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(leader)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def test_forget_asks_on_a_terminal(stack_settings, unique) -> None:
    store = _store(stack_settings, unique)
    _fill(store, int(time.time() * 1000))
    env = _env(stack_settings, unique)
    before = _keys(store)
    declined = _on_a_terminal(["forget", "--all"], env, b"n\n")
    assert declined.returncode == 1 and b"Delete every window under prefix" in declined.stderr
    assert b"nothing deleted" in declined.stderr and _keys(store) == before
    accepted = _on_a_terminal(["forget", "--all"], env, b"y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.decode().startswith(f"deleted {len(before):,} keys") and not _keys(store)
