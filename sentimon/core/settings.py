"""The one typed settings object, read once at the edge (CLI, worker) and passed down, one part per component.

Sources, highest priority first: explicit keyword arguments, ``SENTIMON_*`` environment variables, a TOML
config file (``--config FILE``, ``SENTIMON_CONFIG``, or ``./sentimon.toml`` when present), defaults.
Each field is ``<part>.<field>``: env ``SENTIMON_<PART>__<FIELD>``, TOML ``[<part>] <field> = ...``. Deployments
written before the parts existed keep working: every field also answers to its flat name (``SENTIMON_<FLAT>``,
a top-level TOML key, a ``load_settings`` keyword), listed in the README table; the nested env name wins over
the flat one.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, cast, get_origin

from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from sentimon.core.errors import UserError
from sentimon.core.parts import (
    AlertSettings,
    ConsoleSettings,
    DriftSettings,
    InferenceSettings,
    KafkaSettings,
    MetricsSettings,
    Part,
    StackSettings,
    StreamSettings,
    TopicSettings,
    WindowSettings,
    WorkerSettings,
    check_lateness,
)

DEFAULT_CONFIG_FILE = "sentimon.toml"
ENV_PREFIX = "SENTIMON_"
NESTED_DELIMITER = "__"


class ConfigError(UserError):
    """A settings problem the user can fix; the message says how."""


# Every flat (pre-parts) name -> (part, field); filled below from the parts' flat_prefix/flat_names.
FLAT_NAMES: dict[str, tuple[str, str]] = {}


def _nest(values: dict[str, Any]) -> dict[str, Any]:
    """Flat keys moved into their part; nested keys and unknown keys (left for validation to name) kept."""
    out: dict[str, Any] = {}
    flat = []
    for key, value in values.items():
        if key in FLAT_NAMES:
            flat.append((key, value))
        elif isinstance(value, BaseModel) and key in Settings.model_fields:
            out[key] = value.model_dump()  # so a flat key of the same part merges into it
        else:
            out[key] = dict(value) if isinstance(value, dict) else value  # flat keys merge into a copy
    for key, value in flat:
        part, field = FLAT_NAMES[key]
        target = out.setdefault(part, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{part} is given whole and {key} is given too; give one of them")
        if field in target:
            raise ConfigError(f"{key} and {part}.{field} name the same setting; give one of them")
        target[field] = value
    return out


class _FlatInit(PydanticBaseSettingsSource):
    """Keyword arguments with flat keys moved into their parts: done per source, so precedence holds between
    a flat name in one source and the nested name in another."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self.inner = inner

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ delegates whole

    def __call__(self) -> dict[str, Any]:
        return _nest(self.inner())


class _FlatToml(TomlConfigSettingsSource):
    """The config file, flat keys moved into their parts."""

    def __call__(self) -> dict[str, Any]:
        try:
            return _nest(super().__call__())
        except ConfigError as exc:
            raise ConfigError(f"config file {self.toml_file_path}: {exc}") from None


class _FlatEnv(PydanticBaseSettingsSource):
    """``SENTIMON_<FLAT NAME>`` variables; list values are JSON, as for the nested names."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads the environment whole

    def __call__(self) -> dict[str, Any]:
        env = {key.upper(): value for key, value in os.environ.items()}
        found = {}
        for name, (part, field) in FLAT_NAMES.items():
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            info = PARTS[part].model_fields[field]
            try:
                found[name] = self.decode_complex_value(name, info, raw) if self.field_is_complex(info) else raw
            except json.JSONDecodeError:
                raise ConfigError(f"{ENV_PREFIX}{name.upper()} must be a JSON list, got {raw!r}") from None
        return _nest(found)


class Settings(BaseSettings):
    """Every knob of sentimon, one frozen part per component; see the module docstring for the sources."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED_DELIMITER, frozen=True, extra="forbid"
    )

    stack: StackSettings = Field(default_factory=StackSettings, description=StackSettings.__doc__)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings, description=KafkaSettings.__doc__)
    topics: TopicSettings = Field(default_factory=TopicSettings, description=TopicSettings.__doc__)
    inference: InferenceSettings = Field(default_factory=InferenceSettings, description=InferenceSettings.__doc__)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings, description=MetricsSettings.__doc__)
    worker: WorkerSettings = Field(default_factory=WorkerSettings, description=WorkerSettings.__doc__)
    stream: StreamSettings = Field(default_factory=StreamSettings, description=StreamSettings.__doc__)
    windows: WindowSettings = Field(default_factory=WindowSettings, description=WindowSettings.__doc__)
    alerts: AlertSettings = Field(default_factory=AlertSettings, description=AlertSettings.__doc__)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings, description=ConsoleSettings.__doc__)
    drift: DriftSettings = Field(default_factory=DriftSettings, description=DriftSettings.__doc__)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            _FlatInit(settings_cls, init_settings),
            env_settings,
            _FlatEnv(settings_cls),
            _FlatToml(settings_cls),
        )

    @model_validator(mode="after")
    def _across_parts(self) -> Settings:
        check_lateness(self.stream, self.windows)
        if self.inference.registry_database is None:
            # The loader sees only the inference part; it finds the registry's aliases in the stack's database.
            inference = self.inference.model_copy(update={"registry_database": self.stack.database})
            object.__setattr__(self, "inference", inference)  # the settings are frozen once built
        return self

    def replace(self, **changes: Any) -> Settings:
        """A validated copy with some values changed: parts as dicts (``windows={"prefix": "x"}``, merged into
        the current part) or flat names (``window_prefix="x"``)."""
        values = self.model_dump()
        if values["inference"]["registry_database"] == self.stack.database:
            values["inference"]["registry_database"] = None  # derived from the stack: follow a changed database
        for part, value in _nest(changes).items():
            values[part] = {**values[part], **value} if isinstance(value, dict) and part in values else value
        try:
            return type(self).model_validate(values)
        except ValidationError as exc:
            raise ConfigError(f"invalid settings: {_problems(exc)}") from None


PARTS: dict[str, type[Part]] = {
    name: cast(type[Part], field.annotation) for name, field in Settings.model_fields.items()
}
FLAT_NAMES.update({cls.flat_name(field): (part, field) for part, cls in PARTS.items() for field in cls.model_fields})


def env_names(part: str, field: str) -> tuple[str, str]:
    """The nested and the flat environment variable of a field."""
    return f"{ENV_PREFIX}{part}{NESTED_DELIMITER}{field}".upper(), f"{ENV_PREFIX}{PARTS[part].flat_name(field)}".upper()


def setting_name(part: str, field: str) -> str:
    """A setting as messages name it: ``stack.kafka_port (SENTIMON_STACK__KAFKA_PORT or SENTIMON_KAFKA_PORT)``."""
    return "{}.{} ({} or {})".format(part, field, *env_names(part, field))


def _problems(exc: ValidationError) -> str:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        where = ".".join(loc) or "settings"
        if len(loc) >= 2 and loc[0] in PARTS and loc[1] in PARTS[loc[0]].model_fields:
            where += " ({} or {})".format(*env_names(loc[0], loc[1]))
        out.append(f"{where}: {err['msg']}")
    return "; ".join(out)


def _not_json(exc: SettingsError) -> str:
    # pydantic-settings names only the part ('error parsing value for field "alerts"'): find the variable.
    match = re.search(r'field "(\w+)"', str(exc))
    part = match.group(1) if match else ""
    if part not in PARTS:
        return f"invalid settings: {exc}"
    whole = f"{ENV_PREFIX}{part}".upper()
    bad = []
    for key, raw in os.environ.items():
        name = key.upper()
        if name.startswith(whole + NESTED_DELIMITER):
            info = PARTS[part].model_fields.get(name.removeprefix(whole + NESTED_DELIMITER).lower())
            if info is None or get_origin(info.annotation) is not list:
                continue
        elif name != whole:
            continue
        try:
            json.loads(raw)
        except ValueError:
            bad.append(f"{name}={raw!r}")
    what = ", ".join(sorted(bad)) or f"a {whole}{NESTED_DELIMITER}<FIELD> variable"
    return (
        f"{what} is not valid JSON: in environment variables a list setting is a JSON list "
        '(e.g. \'["a", "b"]\') and a whole part a JSON object'
    )


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Read settings from arguments (parts or flat names), environment and the config file; raise ConfigError
    on bad values."""
    path = config_file or os.environ.get("SENTIMON_CONFIG")
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = DEFAULT_CONFIG_FILE
    cls: type[Settings] = Settings
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (given by --config or SENTIMON_CONFIG)")
        cls = cast(
            type[Settings],
            type("Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": path}}),
        )
    try:
        return cls(**overrides)
    except ValidationError as exc:
        where = f" (config file {path})" if path else ""
        raise ConfigError(f"invalid settings{where}: {_problems(exc)}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except SettingsError as exc:
        raise ConfigError(_not_json(exc)) from None


def markdown_table() -> str:
    """The settings tables of the README, one per part, generated from the field descriptions (a test keeps the
    README in sync)."""
    out = []
    for part, cls in PARTS.items():
        out += [f"**`[{part}]`** {cls.__doc__}", "", "| setting | env var | flat env var | default | meaning |"]
        out.append("|---|---|---|---|---|")
        for name, field in cls.model_fields.items():
            default = "computed" if field.default_factory is not None else field.default
            nested, flat = env_names(part, name)
            meaning = (field.description or "").replace("|", "\\|")
            out.append(f"| `{part}.{name}` | `{nested}` | `{flat}` | `{default}` | {meaning} |")
        out.append("")
    return "\n".join(out).rstrip()
