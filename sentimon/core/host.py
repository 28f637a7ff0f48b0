"""Facts about the host that benchmarks, reports and test harnesses record or need."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path


def machine_description() -> str:
    """e.g. 'AMD EPYC 7B13, 2 cores, 24 GiB RAM, Linux 6.1, Python 3.11.7' (for BENCHMARKS.md and manifests)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_gb:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
