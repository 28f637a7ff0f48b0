"""`sentimon console` as a user runs it: prints the URL, serves, stops on Ctrl-C; off loopback the URL carries
a fresh token and requests without it are refused; a taken port is one error line naming the fix."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from sentimon.core.host import free_port

pytestmark = pytest.mark.integration


def env_for(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}
    env.update({"SENTIMON_KAFKA_BOOTSTRAP": settings.stack.kafka_servers, "SENTIMON_REDIS_URL": settings.stack.redis,
                "SENTIMON_DATABASE_URL": settings.stack.database, "COLUMNS": "250"})  # fmt: skip
    return env


def start(settings, *args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "sentimon", "console", *args], env=env_for(settings),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "console: http" in line:
            return proc, line.split("console: ", 1)[1].split()[0]
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"no URL printed: {proc.stdout.read()}")


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, _ = proc.communicate(timeout=15)
    return proc.returncode, out


def test_serves_on_loopback_and_stops_on_ctrl_c(stack_settings) -> None:
    port = free_port()
    proc, url = start(stack_settings, "--port", str(port))
    try:
        assert url == f"http://127.0.0.1:{port}/"
        with urllib.request.urlopen(url + "api/board", timeout=10) as resp:
            assert "entities" in json.loads(resp.read())
    finally:
        code, out = stop(proc)
        assert code == 0 and "Traceback" not in out, out


def test_off_loopback_requires_the_printed_token(stack_settings) -> None:
    port = free_port()
    proc, url = start(stack_settings, "--host", "0.0.0.0", "--port", str(port))
    try:
        assert "?token=" in url
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/board", timeout=10)
        assert refused.value.code == 401
        token = url.split("?token=")[1]
        auth = {"Authorization": f"Bearer {token}"}
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/config", headers=auth)
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read())["refresh_s"] > 0
    finally:
        stop(proc)


def test_a_taken_port_is_one_error_line(stack_settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "sentimon", "console", "--port", str(port)],
                              env=env_for(stack_settings), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "console.port" in done.stderr and "Traceback" not in done.stderr
