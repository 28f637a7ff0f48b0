"""`sentimon drift`: user mistakes and unreachable services are one line on stderr with exit 2 (no services)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentimon.core.host import free_port
from tests.streams.test_cli import base_env, sentimon


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give one of --from-replay NAMESPACE or --topic TOPIC"),
        (["--from-replay", "ns", "--topic", "t"], "give one of --from-replay NAMESPACE or --topic TOPIC"),
        (["--from-replay", "ns", "--since", "2026-12-01"], "--since/--until go with --topic"),
        (["--topic", "t", "--since", "2026-12-02", "--until", "2026-12-01"], "--until must be after --since"),
        (["--topic", "t", "--since", "yesterday-ish"], "--since 'yesterday-ish'"),
    ],
)
def test_reference_argument_mistakes_fail_in_one_line(args: list[str], message: str) -> None:
    done = sentimon("drift", "reference", *args, env=base_env())
    stderr = done.stderr.decode()
    assert done.returncode == 2 and message in stderr and stderr.count("\n") == 1, stderr
    assert done.stdout == b""


def test_status_without_redis_and_with_a_broken_reference_fail_in_one_line(tmp_path: Path) -> None:
    env = base_env(SENTIMON_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
                   SENTIMON_DRIFT__REFERENCE=str(tmp_path / "none.json"))  # fmt: skip
    done = sentimon("drift", "status", env=env)
    assert done.returncode == 2 and "is unreachable" in done.stderr.decode() and done.stderr.count(b"\n") == 1
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    done = sentimon("drift", "status", env={**env, "SENTIMON_DRIFT__REFERENCE": str(broken)})
    stderr = done.stderr.decode()
    assert done.returncode == 2 and "is not a drift reference" in stderr and stderr.count("\n") == 1, stderr
