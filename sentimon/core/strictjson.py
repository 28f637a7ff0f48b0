"""JSON as a record must be to be stored and re-emitted: Python's parser accepts ``NaN``/``Infinity`` literals and
numbers beyond a 64-bit float, which no other JSON reader does (and Redis rejects as scores). The worker's
validation and `sentimon score` parse through ``loads`` so both refuse them the same way."""

from __future__ import annotations

import json
import math
from typing import Any


class NonFiniteNumber(ValueError):
    """A NaN/Infinity literal or a number that does not fit a 64-bit float."""


def _reject_constant(name: str) -> float:
    raise NonFiniteNumber(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NonFiniteNumber(f"{text[:40]} does not fit a 64-bit float")
    return value


def loads(text: str | bytes) -> Any:
    """``json.loads`` that raises NonFiniteNumber for non-finite numbers (and, like it, ValueError for bad JSON
    and RecursionError for nesting too deep to parse)."""
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
