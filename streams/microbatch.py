"""Adaptive micro-batching: how many records the next batch may hold and how long it may wait for them.

Pure: the Faust shell reports each batch (``observe``) and asks for the next plan (``plan``); nothing here
touches Kafka or a clock of its own, so the controller is tested with numbers.

The rule. Processing a batch of ``n`` records costs about ``T(n) = a + b n`` seconds (``a``: what a batch pays
once -- the Redis script, the Kafka acknowledgement, thread hand-offs; ``b``: what each record pays -- mostly the
model), fitted by exponentially weighted least squares over recent batches. Records arrive at ``rate`` (an
exponentially weighted mean of records per second between batch starts). A worker keeps up when it processes
at least ``headroom x rate`` records per second, i.e. ``n / T(n) >= headroom x rate``; the smallest such ``n``
gives the lowest latency (a batch closes as soon as it holds ``n`` records), so that is the plan's size, capped
by ``stream.max_batch``. The plan's wait is the time ``n`` records take to arrive at the observed rate, between
``min_wait_s`` and ``stream.batch_within_s``. Low traffic: batches of one, closed as each record arrives. High
traffic or a backlog: the rate reaches what the worker can do, no size keeps up with headroom, so batches are
full and the per-batch cost is spread over ``max_batch`` records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class BatchPlan:
    max_batch: int
    wait_s: float


class BatchController:
    """Chooses (batch size, wait) from the observed arrival rate and batch cost; see the module docstring.

    ``adaptive=False`` pins every plan to ``(max_batch, max_wait_s)``: the fixed behaviour.
    """

    def __init__(
        self,
        max_batch: int,
        max_wait_s: float,
        *,
        adaptive: bool = True,
        headroom: float = 2.0,
        min_wait_s: float = 0.001,
        smoothing: float = 0.2,
    ):
        if max_batch < 1 or max_wait_s <= 0 or headroom < 1 or not 0 < smoothing <= 1 or min_wait_s < 0:
            raise ValueError("max_batch >= 1, max_wait_s > 0, headroom >= 1, 0 < smoothing <= 1, min_wait_s >= 0")
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self.adaptive, self.headroom, self.min_wait_s = adaptive, headroom, min(min_wait_s, max_wait_s)
        self.alpha = smoothing
        self.rate: float | None = None  # records/s
        # Exponentially weighted sums for the least-squares fit of T(n) = a + b n.
        self._w = self._n = self._t = self._nn = self._nt = 0.0

    # -- what the shell reports
    def observe(self, n: int, cycle_s: float, processing_s: float) -> None:
        """A batch of ``n`` records took ``processing_s`` to process; ``cycle_s`` passed since the previous
        batch started (the records of this batch arrived meanwhile)."""
        if n <= 0:
            return
        if cycle_s > 0:
            rate = n / cycle_s
            self.rate = rate if self.rate is None else (1 - self.alpha) * self.rate + self.alpha * rate
        if processing_s >= 0:
            keep = 1 - self.alpha
            self._w = keep * self._w + 1
            self._n = keep * self._n + n
            self._t = keep * self._t + processing_s
            self._nn = keep * self._nn + n * n
            self._nt = keep * self._nt + n * processing_s

    def cost(self) -> tuple[float, float] | None:
        """The fitted ``(a, b)`` of ``T(n) = a + b n`` in seconds, None before the first batch."""
        if self._w == 0:
            return None
        mean_n, mean_t = self._n / self._w, self._t / self._w
        var_n = self._nn / self._w - mean_n**2
        if var_n > 1e-6 * max(mean_n, 1.0) ** 2:
            b = (self._nt / self._w - mean_n * mean_t) / var_n
            a = mean_t - b * mean_n
            if b > 0 and a >= 0:
                return a, b
        # One batch size so far (or a fit without meaning): charge everything per record -- the cautious side,
        # since the keep-up test then fails for every size as soon as it fails for one, and batches grow.
        return 0.0, mean_t / mean_n

    # -- what the shell asks
    def plan(self) -> BatchPlan:
        if not self.adaptive:
            return BatchPlan(self.max_batch, self.max_wait_s)
        fitted = self.cost()
        if fitted is None or self.rate is None:
            return BatchPlan(1, self.min_wait_s)  # nothing seen yet: no reason to hold the first record
        a, b = fitted
        need = self.headroom * self.rate
        # n / (a + b n) >= need  <=>  n (1 - need b) >= need a
        if need * b >= 1:
            size = self.max_batch
        else:
            size = min(self.max_batch, max(1, math.ceil(need * a / (1 - need * b))))
        wait = size / self.rate if self.rate > 0 else self.max_wait_s
        return BatchPlan(size, min(self.max_wait_s, max(self.min_wait_s, wait)))
