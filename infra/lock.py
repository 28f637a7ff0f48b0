"""``stack_lock(state_dir)``: one `sentimon up` / `down` at a time per state dir (``fcntl.flock``).

Two concurrent `up`s would otherwise both see "not running", both launch Kafka, and one would fail on the taken
port or, worse, both would initialise the same data dir. The lock is a file in the state dir holding the pid and
command of its holder, so a waiter can say who it waits for. The kernel drops the lock when the holder dies:
no stale lock to clean up. Re-entrant within a thread (``Stack.up`` may hold it around each ``Service.start``,
which takes it too): flock locks of two open files of one process would otherwise block each other.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sentimon.infra import procs
from sentimon.infra.errors import InfraError

LOCK_NAME = "stack.lock"
POLL_S = 0.2

log = logging.getLogger(__name__)
_held: dict[tuple[Path, int], int] = {}  # (lock file, thread) -> depth
_held_guard = threading.Lock()


def lock_path(state_dir: Path) -> Path:
    return state_dir / LOCK_NAME


def holder(state_dir: Path) -> str:
    """Who holds the lock, as its holder wrote it (``pid N (what)``), or "unknown"."""
    try:
        return lock_path(state_dir).read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextmanager
def stack_lock(state_dir: Path, timeout_s: float, what: str = "sentimon up/down") -> Iterator[None]:
    """Hold the state dir's lock; wait up to ``timeout_s`` for another process's `up`/`down` to finish (saying
    once who it is), then raise InfraError naming the holder and the lock file. ``what`` tells waiters what the
    holder does."""
    procs.make_private_dirs(state_dir)
    path = lock_path(state_dir.resolve())
    key = (path, threading.get_ident())  # another thread of this process waits like another process does
    with _held_guard:
        depth = _held.get(key, 0)
        if depth:
            _held[key] = depth + 1
    if depth:
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _acquire(fd, state_dir, path, timeout_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({what})\n".encode(), 0)
        with _held_guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _held_guard:
                del _held[key]
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def _acquire(fd: int, state_dir: Path, path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if not told:
            log.warning("waiting for %s to finish (it holds %s)", holder(state_dir), path)
            told = True
        if time.monotonic() >= deadline:
            raise InfraError(
                f"another sentimon ({holder(state_dir)}) has held {path} for over {timeout_s:.0f} s while it starts "
                "or stops the stack; wait for it to finish, or stop that process"
            )
        time.sleep(POLL_S)
