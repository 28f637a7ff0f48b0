"""The model registry: ``Registry(root, database, redis).register(path) -> NAME@VERSION``, ``promote``,
``rollback``, ``history``. Versions are immutable content-hashed folders (``refs.content_version``); aliases
(``champion``, ``candidate``) and the append-only history live in SQL (``tables``), mirrored to Redis for workers.
``inference.load("NAME@champion")`` resolves through ``resolve_ref``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentimon.core.parts import InferenceSettings
from sentimon.inference.registry.refs import ALIASES, Ref, RegistryError, content_version, is_ref, parse_ref

if TYPE_CHECKING:
    from sentimon.core.settings import Settings
    from sentimon.inference.registry.store import AliasChange, Registered, Registry


def __getattr__(name: str) -> Any:
    # The store pulls in SQLAlchemy (over a second to import): only when the registry is used, not with `inference`.
    if name in ("AliasChange", "Registered", "Registry"):
        from sentimon.inference.registry import store

        return getattr(store, name)
    raise AttributeError(name)


__all__ = [
    "ALIASES", "AliasChange", "Ref", "Registered", "Registry", "RegistryError", "content_version", "from_settings",
    "is_ref", "parse_ref", "resolve_ref",
]  # fmt: skip


def from_settings(settings: Settings, redis: Any = None) -> Registry:
    """The registry the settings name: ``inference.registry_dir``, ``inference.registry_database`` (unset: the
    stack's database), Redis keys under ``inference.registry_prefix``."""
    from sentimon.inference.registry.store import Registry

    inf = settings.inference
    database = inf.registry_database or settings.stack.database
    return Registry(inf.registry_dir, database, redis, inf.registry_prefix, settings.stack.redis_connect_timeout_s)


def resolve_ref(text: str, opts: InferenceSettings) -> Path:
    """The folder of a registry reference, for ``inference.load``: ``NAME@VERSION`` from disk alone, an alias
    through the registry database (``opts.registry_database``)."""
    from sentimon.inference.registry.store import Registry

    ref = parse_ref(text)
    if ref.version is not None:
        return Registry.path_on_disk(opts.registry_dir, ref)
    if not opts.registry_database:
        raise RegistryError(
            f"{text} names a registry alias, which the scorer looks up in the registry database: set "
            "SENTIMON_INFERENCE__REGISTRY_DATABASE (usually the same URL as SENTIMON_STACK__DATABASE_URL), "
            f"or load a version, e.g. `sentimon models list` shows {ref.name}@VERSION"
        )
    registry = Registry(opts.registry_dir, opts.registry_database, prefix=opts.registry_prefix)
    try:
        return registry.path_of(ref)
    finally:
        registry.close()
