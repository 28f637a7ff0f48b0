"""``connect(stack)``: the one way sentimon opens a Redis client, always with connect and reply timeouts.

Without a reply timeout a black-holed Redis (a partition, a frozen VM) blocks the calling thread forever: the
worker's executor and the alert timer stop without an error. With one, the call raises ``redis.TimeoutError``,
which every caller already treats as "Redis unavailable, retry" (see ``streams.pipeline``).
"""

from __future__ import annotations

from typing import Any

from sentimon.core.parts import StackSettings


def connect(stack: StackSettings, **overrides: Any):
    """A ``redis.Redis`` for ``stack.redis`` with the stack's socket timeouts (``overrides`` go to redis-py)."""
    import redis

    options: dict[str, Any] = {
        "socket_connect_timeout": stack.redis_connect_timeout_s,
        "socket_timeout": stack.redis_timeout_s,
        **overrides,
    }
    return redis.Redis.from_url(stack.redis, **options)
