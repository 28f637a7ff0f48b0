"""`sentimon up` / `status` / `down` as a user runs them, on a stack of its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sentimon.core.host import free_port

pytestmark = pytest.mark.integration


def _processes_in(state_dir: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")).is_relative_to(state_dir):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_up_status_down_leaves_no_process() -> None:
    state_dir = Path(tempfile.mkdtemp(prefix="sentimon-life-", dir="/tmp")).resolve()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")},
        "SENTIMON_STATE_DIR": str(state_dir),
        "SENTIMON_KAFKA_PORT": str(free_port()),
        "SENTIMON_KAFKA_CONTROLLER_PORT": str(free_port()),
        "SENTIMON_REDIS_PORT": str(free_port()),
        "SENTIMON_POSTGRES_PORT": str(free_port()),
    }

    def sentimon(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "sentimon", *args], env=env, capture_output=True, text=True, timeout=180
        )

    try:
        down_before = sentimon("status", "--json")
        assert down_before.returncode == 1
        assert not any(s["up"] for s in json.loads(down_before.stdout).values())

        up = sentimon("up")
        assert up.returncode == 0, up.stderr
        assert sentimon("up").returncode == 0  # twice is fine
        status = sentimon("status", "--json")
        assert status.returncode == 0, status.stdout
        assert all(s["up"] for s in json.loads(status.stdout).values())
        topics = sentimon("topics", "create")
        assert topics.returncode == 0, topics.stderr
        assert "created" in topics.stdout
        pids = {
            int((state_dir / "run" / f"{name}.pid").read_text().split()[0]) for name in ("kafka", "redis", "database")
        }
        assert pids <= set(_processes_in(state_dir))  # PostgreSQL's own workers are there too

        down = sentimon("down")
        assert down.returncode == 0, down.stderr
        assert _processes_in(state_dir) == []
        assert not any(json.loads(sentimon("status", "--json").stdout)[s]["up"] for s in ("kafka", "redis"))
    finally:
        sentimon("down")
        shutil.rmtree(state_dir, ignore_errors=True)


def test_cli_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sentimon", "--config", str(tmp_path / "missing.toml"), "status"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr
