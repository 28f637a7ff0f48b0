"""Detached service processes tracked by pid files: start once, find again, stop only what we started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def read_pid(pid_file: Path, marker: Path) -> int | None:
    """The live pid recorded in ``pid_file`` of the process ``spawn`` started inside ``marker``, else None.

    Two checks tell our process from a recycled pid: its working directory is inside ``marker`` (the service's
    own directory: every service is started there, and Redis rewrites its command line), and its start time
    (``/proc/<pid>/stat``, clock ticks since boot) is the one ``spawn`` recorded. A pid file from before start
    times were recorded holds only the pid; the directory check alone decides for it.
    """
    try:
        recorded = pid_file.read_text().split()
        pid = int(recorded[0])
        started = int(recorded[1]) if len(recorded) > 1 else None
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except (FileNotFoundError, ValueError, IndexError, ProcessLookupError, PermissionError):
        return None
    if not cwd.is_relative_to(marker) or _is_zombie(pid):
        return None
    if started is not None and start_time(pid) != started:
        return None
    return pid


def _stat_fields(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` after the command name (which may hold spaces and parentheses): field 3 onwards."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat`` field 22); None when it is gone."""
    try:
        return int(_stat_fields(pid)[19])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def _is_zombie(pid: int) -> bool:
    try:
        return _stat_fields(pid)[0] == "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True


@contextmanager
def private_umask() -> Iterator[None]:
    """Everything created inside (and by processes started inside) is readable by its owner only."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def make_private_dirs(root: Path, *paths: Path) -> None:
    """Create ``root`` (the state dir) and ``paths`` inside it where missing, mode 0700. Directories that exist
    are left as they are: a user's own state dir, or one a service chmod-ed for its account, keeps its mode.
    Missing ancestors of ``root`` get 0711: PostgreSQL, run as its own account when sentimon runs as root, must
    pass through them to its data dir; nobody else may list them."""
    for path in (root, *paths):
        missing = [p for p in (path, *path.parents) if not p.exists()]
        for directory in reversed(missing):
            try:
                directory.mkdir(mode=0o700)
            except FileExistsError:  # made by a concurrent process: theirs, not ours to chmod
                continue
            # mkdir's mode passes through the umask; chmod's does not.
            directory.chmod(0o700 if directory.is_relative_to(root) else 0o711)


def spawn(
    cmd: list[str],
    *,
    pid_file: Path,
    log_file: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    user: str | None = None,
) -> int:
    """Start ``cmd`` in its own session (it outlives the CLI), output appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            user=user,
            group=_primary_group(user) if user else None,
        )
    # The start time makes the pid file name this process only, never a later one that reuses the pid.
    started = start_time(proc.pid)
    pid_file.write_text(f"{proc.pid} {started}\n" if started is not None else f"{proc.pid}\n")
    return proc.pid


def _primary_group(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid


def stop(pid: int, timeout_s: float = 30.0) -> None:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not wait_until(lambda: not alive(pid), timeout_s):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        wait_until(lambda: not alive(pid), 5.0)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Our children are reaped by nobody else when the CLI itself started them; a zombie is gone.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return not _is_zombie(pid)


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
