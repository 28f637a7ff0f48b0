"""Dedicated services for chaos tests: each test that kills or stops a service gets its own instance, started
by the project's launcher in a temporary state dir, so the session-shared stack other tests use is never hit."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sentimon.core.settings import Settings
from sentimon.infra import Stack
from sentimon.infra.stack import SERVICE_NAMES
from tests.conftest import fresh_stack_settings


@contextmanager
def dedicated(*services: str) -> Iterator[Settings]:
    """Settings whose ``services`` (kafka, redis, database) run only for this test; URLs of the others are unset."""
    assert set(services) <= set(SERVICE_NAMES)
    # Only the named services are launched; the others' URLs are unset so nothing points at the shared stack.
    state_dir, settings = fresh_stack_settings("sentimon-chaos-", kafka_bootstrap=None, redis_url=None,
                                               database_url=None)  # fmt: skip
    stack = Stack(settings, only=services)
    try:
        stack.up()
        yield settings
    finally:
        stack.down()
        shutil.rmtree(state_dir, ignore_errors=True)


def service(settings: Settings, name: str):
    (svc,) = Stack(settings, only=(name,)).services
    return svc


def kill9(settings: Settings, name: str) -> None:
    """SIGKILL the dedicated service ``name`` (no shutdown of any kind)."""
    svc = service(settings, name)
    pid = svc.pid()
    assert pid is not None, f"{name} is not running"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while svc.pid() is not None:  # gone, or a zombie its launcher has not reaped
        assert time.monotonic() < deadline, f"{name} (pid {pid}) survived SIGKILL"
        time.sleep(0.05)


def restart(settings: Settings, name: str) -> None:
    Stack(settings, only=(name,)).up()


def stop(settings: Settings, name: str) -> None:
    Stack(settings, only=(name,)).down()
