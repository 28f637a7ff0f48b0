"""A demo run's namespaced settings and its `sentimon worker` child process, watched through the worker's own
signals: its ready file for readiness, the consumer group's committed offsets for "done"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from sentimon.core.errors import UserError
from sentimon.core.host import free_port
from sentimon.core.settings import env_names

READY_TIMEOUT_S = 120.0  # loading a model on a busy two-core host
STOP_TIMEOUT_S = 30.0
POLL_S = 0.5


def demo_settings(settings, run_id: str, out_dir: Path, model: str | None = None):
    """Everything a demo run writes lives under ``run_id``: topics, Redis prefixes, the alert history file, the
    consumer group. Reruns never see each other's state, and production state is never touched."""
    ns = f"sentimon.demo.{run_id}"
    return settings.replace(
        inference={"model": model or settings.inference.model},
        topics={
            "social": f"{ns}.raw.social",
            "market": f"{ns}.raw.market",
            "scored": f"{ns}.scored",
            "dlq": f"{ns}.dlq",
            "alerts": f"{ns}.alerts",
            # One partition on one topic keeps the whole day in event-time order inside the worker: played
            # hundreds of times faster than real time, any skew between partitions would be minutes of event
            # time (late events, entities looking silent) that a real-time stream never has.
            "partitions": 1,
        },
        # The day plays hundreds of times faster than real time: a second of skew between the market and
        # social agents is minutes of event time, so lateness is scaled up with it.
        windows={"prefix": f"demo:{run_id}", "allowed_lateness_ms": 3 * 3_600_000},
        alerts={"prefix": f"demo:{run_id}:alerts", "webhooks": []},
        stack={"database_url": f"sqlite:///{(out_dir / 'alerts.db').resolve()}"},
        stream={"hooks": ["sentimon.alerts:stream_hook"]},
        # A demo runs beside whatever else is on this host: its worker takes free ports.
        worker={"id": f"sentimon-demo-{run_id}", "data_dir": out_dir / "worker", "web_port": free_port()},
        metrics={"port": free_port()},
    )


def settings_env(settings) -> dict[str, str]:
    """``SENTIMON_*`` variables that reproduce ``settings`` in a child process."""
    env = {}
    for part, values in settings.model_dump().items():
        for name, value in values.items():
            if value is None:
                continue
            if isinstance(value, list):
                value = json.dumps([str(v) for v in value])
            elif isinstance(value, SecretStr):  # str() would give the child '**********'
                value = value.get_secret_value()
            env[env_names(part, name)[0]] = str(value)
    return env


class DemoWorker:
    """`sentimon worker` in a child process with ``settings``; its output goes to ``log_path`` and its ready file
    beside it."""

    def __init__(self, settings, log_path: Path):
        self.settings, self.log_path = settings, log_path
        self.ready_file = log_path.with_suffix(".ready")
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sentimon", "worker", "--ready-file", str(self.ready_file)],
                env={**os.environ, **settings_env(settings)}, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Ready when its ready file exists: the scorer is loaded and the worker holds its partitions."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-10:])
                raise UserError(f"the worker exited (code {self.proc.returncode}) during start-up; "
                                f"see {self.log_path}:\n{tail}")  # fmt: skip
            if self.ready_file.exists():
                return
            time.sleep(POLL_S)
        raise UserError(f"the worker did not start within {timeout_s:.0f} s; see {self.log_path}")

    def wait_done(self, topics: list[str], timeout_s: float, on_wait: Callable[[], None] = lambda: None) -> None:
        """Return once the worker's consumer group committed every record now on ``topics``; fail when it commits
        nothing for ``timeout_s``.

        The worker acknowledges a batch only after its window update, its alert evaluation (the stream hook
        writes the alert history) and its scored/DLQ publish, so by then the windows and alerts are final.
        """
        from kafka import TopicPartition

        from sentimon.infra import kafka_clients

        # A group member that never subscribes only reads the group's offsets; it never joins or commits.
        consumer = kafka_clients.consumer(
            self.settings, group_id=self.settings.worker.id, enable_auto_commit=False, client_id="sentimon-demo"
        )
        try:
            partitions = [TopicPartition(topic, p) for topic in topics
                          for p in sorted(consumer.partitions_for_topic(topic) or ())]  # fmt: skip
            ends = consumer.end_offsets(partitions)
            deadline, done = time.monotonic() + timeout_s, -1
            while any((consumer.committed(tp) or 0) < ends[tp] for tp in partitions):
                if self.proc.poll() is not None:
                    raise UserError(f"the worker stopped (exit {self.proc.returncode}); see {self.log_path}")
                committed = sum(consumer.committed(tp) or 0 for tp in partitions)
                if committed > done:  # a slow worker on a busy host is waited for as long as it moves
                    deadline, done = time.monotonic() + timeout_s, committed
                if time.monotonic() > deadline:
                    raise UserError(f"the worker committed nothing for {timeout_s:.0f} s and has not caught up; "
                                    f"see {self.log_path}")  # fmt: skip
                on_wait()
                time.sleep(POLL_S)
        finally:
            consumer.close()

    def stop(self) -> None:
        from sentimon.infra import procs

        procs.stop(self.proc.pid, timeout_s=STOP_TIMEOUT_S)  # SIGTERM: the worker finishes its batch and commits
