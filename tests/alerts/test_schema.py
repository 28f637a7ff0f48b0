"""Rule files: shipped defaults load; every mistake is a RuleError naming the file, rule and field."""

from __future__ import annotations

import pytest

from sentimon.alerts.errors import RuleError
from sentimon.alerts.schema import K_PRESETS, RULES_DIR, load_ruleset, load_rulesets, parse_duration_ms, parse_ruleset
from sentimon.core.errors import UserError

GOOD = {"name": "neg", "kind": "level", "metric": "negative_share", "window": "1h", "op": "above", "threshold": 0.4}


def check(rule: dict, *fragments: str, **extra) -> None:
    with pytest.raises(RuleError) as err:
        parse_ruleset({"name": "set", "rules": [rule], **extra}, "rules.yaml")
    message = str(err.value)
    assert message.startswith("rules.yaml: ")
    for fragment in fragments:
        assert fragment in message, message


def test_shipped_rule_sets_load_and_select_their_entities():
    stock, opinion = load_rulesets()
    assert stock.name == "stock" and opinion.name == "opinion"
    assert {r.kind for r in stock.rules} == {"level", "spike", "ratio", "silence"}
    assert stock.rules_for("AAPL") and stock.rules_for("BRK.B") and not stock.rules_for("Nintendo")
    assert opinion.rules_for("Nintendo") and opinion.rules_for("driverless-cars") and not opinion.rules_for("AAPL")
    assert stock.rules_for("UAL") and opinion.rules_for("UAL")  # airlines are both
    assert stock.calendar is not None


@pytest.mark.parametrize(
    ("text", "ms"),
    [("90s", 90_000), ("5m", 300_000), ("1h30m", 5_400_000), ("2d", 172_800_000), ("500ms", 500), (1500, 1500),
     ("1500", 1500), ("1w", 604_800_000)],
)  # fmt: skip
def test_durations(text, ms):
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("bad", ["5 minutes", "m5", "-1s", -5, True, "1h 30x"])
def test_bad_durations_are_refused(bad):
    with pytest.raises(ValueError):
        parse_duration_ms(bad)


def test_errors_name_the_rule_and_field():
    check({**GOOD, "threshold": 1.4}, "rules.yaml: rule 'neg': threshold 1.4 is outside [0.0, 1.0]")
    check({**GOOD, "window": "soon"}, "rule 'neg'", "field 'window'", "not a duration")
    check({**GOOD, "clear": 0.5}, "rule 'neg'", "clear (0.5) must be <= threshold (0.4)")
    check({**GOOD, "kind": "levle"}, "rule 'neg'", "field 'kind'", "level, spike, ratio, silence")
    check({k: v for k, v in GOOD.items() if k != "op"}, "rule 'neg'", "field 'op'", "Field required")
    check({**GOOD, "treshold": 0.3}, "rule 'neg'", "field 'treshold'", "Extra inputs are not permitted")
    check({**GOOD, "severity": "panic"}, "field 'severity'")
    check({**GOOD, "name": None}, "rule #1")
    check("just text", "rule #1: expected a mapping")


def test_kind_specific_checks():
    spike = {"name": "s", "kind": "spike", "metric": "volume", "window": "1h", "baseline": "1h"}
    check(spike, "rule 's'", "baseline must span at least two windows")
    check({**spike, "baseline": "12h", "k": "paranoid"}, "field 'k'", "sensitive, balanced, conservative")
    check({**spike, "baseline": "12h", "k": 2, "clear_k": 3}, "clear_k (3.0) must be between 0 and k")
    ratio = {"name": "r", "kind": "ratio", "window": "1h", "baseline": "1d", "direction": "up", "threshold": 0.8}
    check(ratio, "a surge threshold must be > 1")
    check({**ratio, "direction": "down", "threshold": 1.5}, "a drop threshold must be < 1")
    silence = {"name": "q", "kind": "silence", "window": "1h", "baseline": "1d", "min_rate": 1, "max_count": 2}
    check(silence, "min_rate (1.0) must exceed max_count (2)")
    check({**silence, "min_rate": 5, "market_hours_only": True}, "no calendar")


def test_k_presets_map_to_numbers():
    for name, k in K_PRESETS.items():
        rs = parse_ruleset(
            {
                "name": "x",
                "rules": [
                    {"name": "s", "kind": "spike", "metric": "volume", "window": "1h", "baseline": "12h", "k": name}
                ],
            }
        )
        assert rs.rules[0].k == k and rs.rules[0].effective_clear_k == k / 2  # fmt: skip
    assert list(K_PRESETS.values()) == [1.5, 2.0, 3.0]


def test_overrides_are_validated_and_applied_per_entity():
    rs = parse_ruleset({"name": "x", "rules": [{**GOOD, "overrides": {"TSLA": {"threshold": 0.6, "for": "1m"}}}]})
    assert rs.rules_for("TSLA")[0].threshold == 0.6 and rs.rules_for("TSLA")[0].for_ms == 60_000
    assert rs.rules_for("AAPL")[0].threshold == 0.4
    check({**GOOD, "overrides": {"TSLA": {"threshold": 2}}}, "rule 'neg'", "override for 'TSLA'", "outside")
    check({**GOOD, "overrides": {"TSLA": {"kind": "spike"}}}, "override for 'TSLA' cannot change kind")


def test_defaults_apply_and_rule_values_win():
    rs = parse_ruleset({"name": "x", "defaults": {"for": "5m", "severity": "critical"},
                        "rules": [GOOD, {**GOOD, "name": "b", "for": "1m"}]})  # fmt: skip
    assert [r.for_ms for r in rs.rules] == [300_000, 60_000]
    assert {r.severity for r in rs.rules} == {"critical"}
    with pytest.raises(RuleError, match="defaults: for"):
        parse_ruleset({"name": "x", "defaults": {"for": "later"}, "rules": [GOOD]})


def test_rule_set_level_errors():
    with pytest.raises(RuleError, match="two rules are named 'neg'"):
        parse_ruleset({"name": "x", "rules": [GOOD, GOOD]})
    with pytest.raises(RuleError, match="rules: List should have at least 1 item"):
        parse_ruleset({"name": "x", "rules": []})
    with pytest.raises(RuleError, match="expected a mapping"):
        parse_ruleset(["a"])
    with pytest.raises(RuleError, match="entities.match: invalid regular expression"):
        parse_ruleset({"name": "x", "entities": {"match": "[A-Z"}, "rules": [GOOD]})
    with pytest.raises(RuleError, match="unknown time zone 'Mars/Base'"):
        parse_ruleset({"name": "x", "calendar": {"timezone": "Mars/Base"}, "rules": [GOOD]})
    with pytest.raises(RuleError, match="close must be after open"):
        parse_ruleset({"name": "x", "calendar": {"open": "16:00", "close": "09:30"}, "rules": [GOOD]})


def test_files(tmp_path):
    with pytest.raises(RuleError, match="does not exist"):
        load_ruleset(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nrules: [\n")
    with pytest.raises(RuleError, match=r"bad.yaml:3:1: rule file is not valid YAML: expected the node content"):
        load_ruleset(bad)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UserError):
        load_ruleset(binary)
    copy = tmp_path / "stock.yaml"
    copy.write_text((RULES_DIR / "stock.yaml").read_text())
    with pytest.raises(RuleError, match="rule set name.*stock.*more than one file"):
        load_rulesets([RULES_DIR / "stock.yaml", copy])
