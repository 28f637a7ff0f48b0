"""Alert rules: pydantic models for the YAML rule sets, with errors naming the file, rule and field.

A rule set applies to the entities its selector matches (tickers, brands, topics) and holds rules of four
kinds: ``level`` (mean score or negative share over a window), ``spike`` (z-score vs a trailing baseline),
``ratio`` (surge/drop of volume vs the baseline mean) and ``silence`` (data health). Every rule carries the
anti-flap knobs: ``for`` (pending time), a clear threshold (hysteresis), ``cooldown``, ``renotify``.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Self, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from sentimon.alerts.errors import RuleError
from sentimon.core import durations
from sentimon.core.yamlfile import YamlFileError, load_yaml

RULES_DIR = Path(__file__).parent / "rules"
DEFAULT_RULESETS = ("stock", "opinion")

# Named z-score presets for spike rules, the usual 1.5 / 2 / 3 standard deviations of monitoring products:
# lower k = more sensitive.
K_PRESETS = {"sensitive": 1.5, "balanced": 2.0, "conservative": 3.0}


def parse_duration_ms(value: Any) -> int:
    """'90s', '5m', '1h30m', '2d' or a number of milliseconds (YAML reads a bare 1500 as one) -> milliseconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90s, 5m, 2h or 1d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return durations.parse_duration_ms(value)


DurationMs = Annotated[int, BeforeValidator(parse_duration_ms)]
PositiveDurationMs = Annotated[int, BeforeValidator(parse_duration_ms), Field(gt=0)]


def _k_value(value: Any) -> Any:
    if isinstance(value, str) and value in K_PRESETS:
        return K_PRESETS[value]
    if isinstance(value, str):
        raise ValueError(f"unknown preset {value!r}; use a number or one of {', '.join(K_PRESETS)}")
    return value


KValue = Annotated[float, BeforeValidator(_k_value), Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RuleBase(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)
    severity: Literal["info", "warning", "critical"] = "warning"
    description: str = ""
    for_ms: DurationMs = Field(0, alias="for")
    cooldown_ms: DurationMs = Field(0, alias="cooldown")
    renotify_ms: DurationMs = Field(0, alias="renotify")
    market_hours_only: bool = False
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)

    _per_entity: dict[str, Self] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _build_overrides(self) -> RuleBase:
        for entity, changes in self.overrides.items():
            bad = {"name", "kind", "overrides"} & set(changes)
            if bad:
                raise ValueError(f"override for {entity!r} cannot change {', '.join(sorted(bad))}")
            base = self.model_dump(by_alias=True, exclude={"overrides"})
            try:
                self._per_entity[entity] = cast(Self, self.model_validate({**base, **changes}))
            except ValidationError as exc:
                raise ValueError(f"override for {entity!r}: {_describe(exc)}") from None
        return self

    def for_entity(self, entity: str) -> Self:
        """This rule with the entity's overrides applied."""
        return self._per_entity.get(entity, self)


def _check_clear(op: str, threshold: float, clear: float | None) -> None:
    if clear is None:
        return
    if op in ("above", "up") and clear > threshold:
        raise ValueError(f"clear ({clear}) must be <= threshold ({threshold}) for an upward rule")
    if op in ("below", "down") and clear < threshold:
        raise ValueError(f"clear ({clear}) must be >= threshold ({threshold}) for a downward rule")


class LevelRule(RuleBase):
    """Mean score or negative share over ``window`` crosses ``threshold`` with at least ``min_volume`` mentions."""

    kind: Literal["level"]
    metric: Literal["mean_score", "negative_share"]
    window_ms: PositiveDurationMs = Field(alias="window")
    min_volume: int = Field(10, ge=1)
    op: Literal["above", "below"]
    threshold: float
    clear: float | None = None
    baseline_ms: DurationMs = Field(0, alias="baseline")  # only for the payload's magnitude vs baseline

    @model_validator(mode="after")
    def _thresholds(self) -> LevelRule:
        lo, hi = (0.0, 1.0) if self.metric == "negative_share" else (-1.0, 1.0)
        for name, v in (("threshold", self.threshold), ("clear", self.clear)):
            if v is not None and not lo <= v <= hi:
                raise ValueError(f"{name} {v} is outside [{lo}, {hi}] for metric {self.metric}")
        _check_clear(self.op, self.threshold, self.clear)
        return self


class SpikeRule(RuleBase):
    """z-score of volume or negative share in ``window`` vs the trailing ``baseline`` before it."""

    kind: Literal["spike"]
    metric: Literal["volume", "negative_share"]
    window_ms: PositiveDurationMs = Field(alias="window")
    baseline_ms: PositiveDurationMs = Field(alias="baseline")
    k: KValue = 2.0
    clear_k: float | None = None
    direction: Literal["up", "down", "both"] = "up"
    min_volume: int = Field(10, ge=1)
    min_baseline: int = Field(30, ge=1)

    @model_validator(mode="after")
    def _windows(self) -> SpikeRule:
        if self.baseline_ms < 2 * self.window_ms:
            raise ValueError("baseline must span at least two windows")
        if self.clear_k is not None and not 0 <= self.clear_k <= self.k:
            raise ValueError(f"clear_k ({self.clear_k}) must be between 0 and k ({self.k})")
        return self

    @property
    def effective_clear_k(self) -> float:
        return self.k / 2 if self.clear_k is None else self.clear_k


class RatioRule(RuleBase):
    """Volume (or negative count) in ``window`` over the baseline's mean per window: surge (up) or drop (down)."""

    kind: Literal["ratio"]
    metric: Literal["volume", "negative"] = "volume"
    window_ms: PositiveDurationMs = Field(alias="window")
    baseline_ms: PositiveDurationMs = Field(alias="baseline")
    direction: Literal["up", "down"]
    threshold: float = Field(gt=0)
    clear: float | None = Field(None, gt=0)
    min_baseline: int = Field(30, ge=1)

    @model_validator(mode="after")
    def _thresholds(self) -> RatioRule:
        if self.baseline_ms < 2 * self.window_ms:
            raise ValueError("baseline must span at least two windows")
        if self.direction == "up" and self.threshold <= 1:
            raise ValueError(f"a surge threshold must be > 1 (got {self.threshold}); 1.5 means 150% of baseline")
        if self.direction == "down" and self.threshold >= 1:
            raise ValueError(f"a drop threshold must be < 1 (got {self.threshold}); 0.5 means half the baseline")
        _check_clear(self.direction, self.threshold, self.clear)
        return self


class SilenceRule(RuleBase):
    """At most ``max_count`` mentions in ``window`` for an entity whose baseline averages ``min_rate`` or more."""

    kind: Literal["silence"]
    window_ms: PositiveDurationMs = Field(alias="window")
    baseline_ms: PositiveDurationMs = Field(alias="baseline")
    max_count: int = Field(0, ge=0)
    min_rate: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _windows(self) -> SilenceRule:
        if self.baseline_ms < 2 * self.window_ms:
            raise ValueError("baseline must span at least two windows")
        if self.min_rate <= self.max_count:
            raise ValueError(f"min_rate ({self.min_rate}) must exceed max_count ({self.max_count})")
        return self


Rule = Annotated[LevelRule | SpikeRule | RatioRule | SilenceRule, Field(discriminator="kind")]
_RULE_ADAPTER: TypeAdapter[Any] = TypeAdapter(Rule)
RULE_KINDS = ("level", "spike", "ratio", "silence")


class EntitySelector(_Strict):
    """Which entities a rule set watches: ``include`` names, plus those fully matching ``match`` (every entity
    when ``match`` is unset, unless only ``include`` is given) and not ``exclude_match``, minus ``exclude``."""

    match: str | None = None
    exclude_match: str | None = None
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)

    _pattern: re.Pattern[str] | None = PrivateAttr(None)
    _not_pattern: re.Pattern[str] | None = PrivateAttr(None)

    @field_validator("match", "exclude_match")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    def model_post_init(self, __context: Any) -> None:
        self._pattern = re.compile(self.match) if self.match else None
        self._not_pattern = re.compile(self.exclude_match) if self.exclude_match else None

    def selects(self, entity: str) -> bool:
        if entity in self.exclude:
            return False
        if entity in self.include:
            return True
        if self._not_pattern is not None and self._not_pattern.fullmatch(entity):
            return False
        if self._pattern is not None:
            return self._pattern.fullmatch(entity) is not None
        # No 'match': everything not excluded, unless the selector is only an 'include' list.
        return not self.include or self._not_pattern is not None


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class MarketCalendar(_Strict):
    """Trading hours; rules with ``market_hours_only`` hold still outside them."""

    timezone: str = "America/New_York"
    open: dt.time = dt.time(9, 30)
    close: dt.time = dt.time(16, 0)
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = ["mon", "tue", "wed", "thu", "fri"]
    holidays: list[dt.date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as America/New_York") from None
        return value

    @model_validator(mode="after")
    def _order(self) -> MarketCalendar:
        if self.close <= self.open:
            raise ValueError("close must be after open")
        return self

    def is_open(self, at_ms: int) -> bool:
        local = dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC).astimezone(zoneinfo.ZoneInfo(self.timezone))
        if _WEEKDAYS[local.weekday()] not in self.days or local.date() in self.holidays:
            return False
        return self.open <= local.time() < self.close


class RuleDefaults(_Strict):
    severity: Literal["info", "warning", "critical"] | None = None
    for_ms: DurationMs | None = Field(None, alias="for")
    cooldown_ms: DurationMs | None = Field(None, alias="cooldown")
    renotify_ms: DurationMs | None = Field(None, alias="renotify")


class RuleSet(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    entities: EntitySelector = Field(default_factory=EntitySelector)
    calendar: MarketCalendar | None = None
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> RuleSet:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}; names must be unique in a rule set")
            seen.add(rule.name)
            if rule.market_hours_only and self.calendar is None:
                raise ValueError(f"rule {rule.name!r} sets market_hours_only but the rule set has no calendar")
        return self

    def rule_id(self, rule: RuleBase) -> str:
        return f"{self.name}/{rule.name}"

    def rules_for(self, entity: str) -> list[Rule]:
        """The rules watching ``entity`` (overrides applied); empty when the selector does not match."""
        if not self.entities.selects(entity):
            return []
        return [rule.for_entity(entity) for rule in self.rules]


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg'].removeprefix('Value error, ')}"
        for err in exc.errors()
    )


def parse_ruleset(data: Any, source: str = "<rules>") -> RuleSet:
    """Validate a parsed YAML document; RuleError names the source, the rule and the field."""
    if not isinstance(data, dict):
        raise RuleError(f"{source}: expected a mapping with 'name' and 'rules', got {type(data).__name__}")
    defaults_raw = data.get("defaults") or {}
    try:
        defaults = RuleDefaults.model_validate(defaults_raw)
    except ValidationError as exc:
        raise RuleError(f"{source}: defaults: {_describe(exc)}") from None
    raw_rules = data.get("rules")
    problems: list[str] = []
    rules: list[Any] = []
    if isinstance(raw_rules, list):
        for i, raw in enumerate(raw_rules):
            label = f"rule #{i + 1}"
            if isinstance(raw, dict) and isinstance(raw.get("name"), str):
                label = f"rule {raw['name']!r}"
            if not isinstance(raw, dict):
                problems.append(f"{label}: expected a mapping, got {type(raw).__name__}")
                continue
            if raw.get("kind") not in RULE_KINDS:
                problems.append(
                    f"{label}: field 'kind': must be one of {', '.join(RULE_KINDS)} (got {raw.get('kind')!r})"
                )
                continue
            merged = {**defaults.model_dump(by_alias=True, exclude_none=True), **raw}
            try:
                rules.append(_RULE_ADAPTER.validate_python(merged))
            except ValidationError as exc:
                for err in exc.errors():
                    field = ".".join(str(p) for p in err["loc"][1:])
                    where = f": field '{field}'" if field else ""
                    problems.append(f"{label}{where}: {err['msg'].removeprefix('Value error, ')}")
    if problems:
        raise RuleError(f"{source}: " + "; ".join(problems))
    body = {k: v for k, v in data.items() if k != "defaults"}
    if isinstance(raw_rules, list):
        body["rules"] = rules
    try:
        return RuleSet.model_validate(body)
    except ValidationError as exc:
        raise RuleError(f"{source}: {_describe(exc)}") from None


def load_ruleset(path: Path | str) -> RuleSet:
    """Read and validate one YAML rule set file."""
    path = Path(path)
    if not path.is_file():
        raise RuleError(f"rule file {path} does not exist; shipped examples are in {RULES_DIR}")
    try:
        data = load_yaml(path, "rule file")
    except YamlFileError as exc:
        raise RuleError(str(exc)) from None
    return parse_ruleset(data, str(path))


def load_rulesets(paths: list[Path] | None = None) -> list[RuleSet]:
    """The given rule files, or the shipped stock and opinion sets; rule set names must differ."""
    files = paths or [RULES_DIR / f"{name}.yaml" for name in DEFAULT_RULESETS]
    sets = [load_ruleset(p) for p in files]
    names = [s.name for s in sets]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise RuleError(f"rule set name(s) {', '.join(sorted(duplicated))} used by more than one file")
    return sets


def find_rule(rulesets: Sequence[RuleSet], rule_id: str, entity: str) -> Rule | None:
    """The rule behind ``rule_id`` ("ruleset/rule") with the entity's overrides, None when gone."""
    set_name, _, name = rule_id.partition("/")
    for rs in rulesets:
        if rs.name == set_name:
            for rule in rs.rules:
                if rule.name == name:
                    return rule.for_entity(entity)
    return None
