"""Adaptive micro-batching: how many records the next batch may hold before it closes.

Pure: the Faust shell reports each batch (``observe``) and asks for the next plan (``plan``); nothing here
touches Kafka or a clock of its own, so the controller is tested with numbers.

The rule. Processing a batch of ``n`` records costs about ``T(n) = a + b n`` seconds (``a``: what a batch pays
once -- the Redis script, the Kafka acknowledgement, thread hand-offs; ``b``: what each record pays -- mostly the
model), fitted by exponentially weighted least squares over recent batches. Records arrive at ``rate`` (an
exponentially weighted mean of records per second between batch starts). A worker keeps up when it processes
at least ``headroom x rate`` records per second, i.e. ``n / T(n) >= headroom x rate``; the smallest such ``n``
gives the lowest latency (a batch closes as soon as it holds ``n`` records), so that is the next batch's size,
capped by ``stream.max_batch``. A batch waits for its ``n`` records at most ``stream.batch_within_s`` (Faust's
``take_events`` takes one wait per stream), so the wait follows the size: the time ``n`` records take to arrive.
Low traffic: batches of one, closed as each record arrives, no wait. High traffic or a backlog: the observed rate
reaches what the worker can do, no size keeps up with headroom, so batches are full and the per-batch cost is
spread over ``max_batch`` records.
"""

from __future__ import annotations

import math


class BatchController:
    """Chooses the next batch's size from the observed arrival rate and batch cost; see the module docstring.

    ``adaptive=False`` pins every batch to ``max_batch``: the fixed behaviour.
    """

    def __init__(self, max_batch: int, *, adaptive: bool = True, headroom: float = 1.5, smoothing: float = 0.2):
        if max_batch < 1 or headroom < 1 or not 0 < smoothing <= 1:
            raise ValueError("max_batch >= 1, headroom >= 1 and 0 < smoothing <= 1")
        self.max_batch, self.adaptive, self.headroom, self.alpha = max_batch, adaptive, headroom, smoothing
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
    def size(self) -> int:
        """Records the next batch may hold: it closes when it has them (or after ``stream.batch_within_s``)."""
        if not self.adaptive:
            return self.max_batch
        fitted = self.cost()
        if fitted is None or self.rate is None:
            return 1  # nothing seen yet: no reason to hold the first record
        a, b = fitted
        need = self.headroom * self.rate
        # n / (a + b n) >= need  <=>  n (1 - need b) >= need a
        if need * b >= 1:
            return self.max_batch
        return min(self.max_batch, max(1, math.ceil(need * a / (1 - need * b))))
