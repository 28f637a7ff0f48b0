"""Runtime knobs of a loaded scorer: from Settings, overridable per ``load(...)`` call."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from sentimon.core.errors import UserError
from sentimon.core.settings import Settings


class InferenceError(UserError):
    """A scoring option or model name the user can fix."""


@dataclass(frozen=True)
class RuntimeOptions:
    threads: int = 0  # ORT intra-op threads, 0 = ORT default
    providers: str = "auto"  # "auto" or comma list of ORT execution providers
    graph_optimization: str = "all"
    max_batch: int = 64  # sequences per ORT call
    max_batch_tokens: int = 8192  # padded tokens per ORT call
    pad_multiple: int = 8  # pad a batch's length up to a multiple of this
    window_stride: int = 32  # tokens shared by consecutive windows of a long text
    verify_files: bool = True  # check bundle sha256s on load
    threshold: float | None = None  # cascade: escalate when margin < threshold (None = the cascade's own)

    def __post_init__(self) -> None:
        problems = []
        for name in ("max_batch", "max_batch_tokens", "pad_multiple"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if self.threads < 0 or self.window_stride < 0:
            problems.append("threads and window_stride must be >= 0")
        if self.graph_optimization not in ("disabled", "basic", "extended", "all"):
            problems.append("graph_optimization must be one of disabled, basic, extended, all")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            problems.append("threshold must be in [0, 1]")
        if problems:
            raise InferenceError("invalid scoring options: " + "; ".join(problems))

    @classmethod
    def build(cls, settings: Settings | None, overrides: dict[str, Any]) -> RuntimeOptions:
        base = cls()
        if settings is not None:
            base = cls(
                threads=settings.inference_threads,
                providers=settings.inference_providers,
                graph_optimization=settings.inference_graph_optimization,
                max_batch=settings.inference_max_batch,
                max_batch_tokens=settings.inference_max_batch_tokens,
                pad_multiple=settings.inference_pad_multiple,
                window_stride=settings.inference_window_stride,
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InferenceError(f"unknown scoring option(s) {unknown}; known: {sorted(known)}")
        return replace(base, **overrides)
