"""The local stack's files are its owner's only, a recycled pid is never taken for ours, and one `up` at a time.

Real (trivial) processes through the shared Service lifecycle; no Kafka/Redis/PostgreSQL needed.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sentimon.core.settings import load_settings
from sentimon.infra import InfraError, procs
from sentimon.infra.lock import lock_path, stack_lock
from sentimon.infra.service import Service


class ScriptService(Service):
    """A Service whose process is a small Python script that writes a file in its working directory."""

    name = "script"
    port_setting = "redis_port"
    external_setting = "redis_url"

    def __init__(self, settings, ready_after_s: float = 0.0):
        super().__init__(settings)
        self.ready_file = settings.stack.state_dir.parent / f"{settings.stack.state_dir.name}.ready"
        self.ready_after_s = ready_after_s

    url = property(lambda self: "script://")
    managed = property(lambda self: True)
    port = property(lambda self: 1)

    def command(self) -> list[str]:
        script = (
            "import pathlib, time; pathlib.Path('written-by-service').write_text('x'); "
            f"time.sleep({self.ready_after_s}); pathlib.Path({str(self.ready_file)!r}).touch(); time.sleep(60)"
        )
        return [sys.executable, "-c", script]

    def probe(self) -> bool:
        return self.ready_file.exists()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings(state_dir=tmp_path / "new" / "state", cache_dir=tmp_path / "cache", startup_timeout_s=10)


def _stop_all(*services: Service) -> None:
    for service in services:
        service.stop()


def test_directories_sentimon_creates_are_0700_and_files_0600(settings, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    service = ScriptService(settings)
    umask_before = os.umask(0o022)
    try:
        assert service.start() is True
        assert os.umask(0o022) == 0o022  # restored after the start
        state = settings.stack.state_dir
        for directory in (state, state / "script", state / "run", state / "logs"):
            assert _mode(directory) == 0o700, directory
        # Above the state dir: others may pass (PostgreSQL's account, as root), not list.
        assert _mode(tmp_path / "new") == 0o711
        for file in (service.pid_file, service.log_file, lock_path(state), state / "script" / "written-by-service"):
            assert _mode(file) == 0o600, file  # the last one: the service inherits umask 077
        assert _mode(tmp_path) == 0o755  # not ours: left alone
    finally:
        _stop_all(service)
        os.umask(umask_before)


def test_an_existing_state_dir_keeps_its_mode(settings) -> None:
    # e.g. PostgreSQL's account needs to pass through it (postgres_service chmods it 0711); only new dirs get 0700.
    settings.stack.state_dir.mkdir(parents=True)
    settings.stack.state_dir.chmod(0o711)
    service = ScriptService(settings)
    try:
        service.start()
        assert _mode(settings.stack.state_dir) == 0o711
        assert _mode(settings.stack.state_dir / "run") == 0o700
    finally:
        _stop_all(service)


def test_pid_file_records_the_start_time(settings) -> None:
    service = ScriptService(settings)
    try:
        service.start()
        pid, started = (int(v) for v in service.pid_file.read_text().split())
        assert service.pid() == pid and started == procs.start_time(pid)
    finally:
        _stop_all(service)


def _foreign(cwd: Path) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], cwd=cwd)


def test_a_reused_pid_in_the_service_dir_with_another_start_time_is_not_ours(settings) -> None:
    service = ScriptService(settings)
    # Someone else's process that happens to work in the service's directory and got the recorded pid.
    foreign = _foreign(service.dir)
    try:
        service.pid_file.parent.mkdir(parents=True)
        started = procs.start_time(foreign.pid)
        assert started is not None
        service.pid_file.write_text(f"{foreign.pid} {started - 1}\n")
        assert service.pid() is None
        assert service.stop() is False
        assert foreign.poll() is None  # never signalled
        service.pid_file.write_text(f"{foreign.pid} {started}\n")
        assert service.pid() == foreign.pid  # the same process and start time: ours
    finally:
        foreign.kill()
        foreign.wait()


def test_a_process_of_another_service_is_not_ours(settings) -> None:
    service = ScriptService(settings)
    foreign = _foreign(settings.stack.state_dir / "redis")  # inside the state dir, but not this service's dir
    try:
        service.pid_file.parent.mkdir(parents=True)
        service.pid_file.write_text(f"{foreign.pid} {procs.start_time(foreign.pid)}\n")
        assert service.pid() is None
        assert service.stop() is False
        assert foreign.poll() is None
    finally:
        foreign.kill()
        foreign.wait()


def _processes_in(directory: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")).is_relative_to(directory) and not procs._is_zombie(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_concurrent_ups_launch_one_process(settings) -> None:
    # Two `up`s at once (threads here: the lock treats another thread like another process). The service takes
    # a second to be ready; without the lock both would see "not running" and both launch.
    services = [ScriptService(settings, ready_after_s=1.0) for _ in range(2)]
    launched: list[bool] = []
    threads = [threading.Thread(target=lambda s=s: launched.append(s.start())) for s in services]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(launched) == [False, True]
        assert len(_processes_in(services[0].dir.resolve())) == 1
    finally:
        _stop_all(services[0])


HOLD = """
import sys, time
from pathlib import Path
from sentimon.infra.lock import stack_lock
with stack_lock(Path(sys.argv[1]), timeout_s=5, what="sentimon up"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(state_dir: Path, hold_s: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(state_dir), str(hold_s)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_up_waits_for_the_first_and_says_who_holds_the_lock(settings, caplog) -> None:
    holder = _holder(settings.stack.state_dir, 1.5)
    service = ScriptService(settings)
    try:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="sentimon.infra.lock"):
            assert service.start() is True
        assert time.monotonic() - started >= 1.0  # it waited for the holder to finish
        assert f"pid {holder.pid} (sentimon up)" in caplog.text
    finally:
        _stop_all(service)
        holder.wait(10)


def test_waiting_too_long_for_the_lock_names_the_holder(settings) -> None:
    holder = _holder(settings.stack.state_dir, 30)
    try:
        with pytest.raises(InfraError, match=rf"pid {holder.pid} \(sentimon up\).*stack\.lock"):
            with stack_lock(settings.stack.state_dir, timeout_s=0.5):
                pass
    finally:
        holder.kill()
        holder.wait()
    with stack_lock(settings.stack.state_dir, timeout_s=0.5):  # the kernel released the dead holder's lock
        pass


def test_the_lock_is_reentrant_in_one_thread(settings) -> None:
    with stack_lock(settings.stack.state_dir, timeout_s=0.5):
        with stack_lock(settings.stack.state_dir, timeout_s=0.5):
            pass
        service = ScriptService(settings)  # Stack.up may hold it around each start, which takes it again
        try:
            assert service.start() is True
        finally:
            _stop_all(service)
