"""Runtime knobs of a loaded scorer: the settings' inference part, overridable per ``load(...)`` call."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from sentimon.core.errors import UserError
from sentimon.core.parts import InferenceSettings


class InferenceError(UserError):
    """A scoring option or model name the user can fix."""


def with_overrides(settings: InferenceSettings | None, overrides: dict[str, Any]) -> InferenceSettings:
    """The inference part (its defaults when None) with ``load(...)`` keyword options applied."""
    base = settings if settings is not None else InferenceSettings()
    known = set(InferenceSettings.model_fields)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InferenceError(f"unknown scoring option(s) {unknown}; known: {sorted(known)}")
    try:
        return InferenceSettings.model_validate({**base.model_dump(), **overrides})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors())
        raise InferenceError(f"invalid scoring options: {problems}") from None
