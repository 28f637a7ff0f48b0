"""Behavioural tests in the style of CheckList (Ribeiro et al., 2020): what a sentiment model must get right,
case by case, beside the aggregate metrics.

    report = run_suite(inference.load("default"))       # -> BehaviourReport
    report.capabilities["negation"].pass_rate; report.mft_pass_rate; report.to_markdown(); report.to_dict()

The suite is data, versioned in ``inference/behaviour/suite.yaml`` (its ``version`` goes into every report).
Cases are templates x fillers written for this project (no corpus text). Three kinds of test:

- ``mft`` (minimum functionality): each case's label must meet ``expect``: a label (``neutral``) or
  ``not_<label>`` (``not_negative``: positive or neutral both pass, e.g. "Not bad at all.").
- ``inv`` (invariance): cases made from one template differ only in the ``swap`` filler (a ticker, a company
  name); the group passes when every member gets the same label.
- ``dir`` (direction): each base text with each ``suffix`` appended; a pair passes when the score
  (P(positive) - P(negative)) does not rise by more than ``tolerance``.

A test with ``counted: false`` (sarcasm) is reported but kept out of ``mft_pass_rate``, the figure the model
target (>= 90%) is about.
"""

from __future__ import annotations

import itertools
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sentimon.core.yamlfile import YamlFileError, load_yaml
from sentimon.inference.bundle import LABELS
from sentimon.inference.options import InferenceError
from sentimon.inference.prediction import Prediction, Scorer

SUITE_FILE = Path(__file__).resolve().parent / "behaviour" / "suite.yaml"
EXAMPLES = 5  # failing cases kept per test in a report


class BehaviourTest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    capability: str
    type: Literal["mft", "inv", "dir"]
    templates: list[str] = Field(default_factory=list)
    cases: list[str] = Field(default_factory=list)  # literal texts, used as they are
    expect: str | None = None  # mft: a label or not_<label>
    swap: str | None = None  # inv: the filler whose values a group varies
    suffixes: list[str] = Field(default_factory=list)  # dir: appended to each base text
    tolerance: float = Field(0.05, ge=0.0)  # dir: the score rise still counted as "not higher"
    sample: int | None = Field(None, ge=1)  # at most this many template expansions (seeded)
    counted: bool = True  # False: reported, but not part of mft_pass_rate

    @field_validator("expect")
    @classmethod
    def _expect(cls, value: str | None) -> str | None:
        if value is not None and value.removeprefix("not_") not in LABELS:
            raise ValueError(f"expect must be one of {LABELS} or not_<label>, got {value!r}")
        return value

    @model_validator(mode="after")
    def _kind(self) -> BehaviourTest:
        if self.type == "mft" and self.expect is None:
            raise ValueError(f"{self.name}: an mft test needs expect")
        if self.type == "inv" and not self.swap:
            raise ValueError(f"{self.name}: an inv test needs swap (the filler it varies)")
        if self.type == "dir" and not self.suffixes:
            raise ValueError(f"{self.name}: a dir test needs suffixes")
        if not self.templates and not self.cases:
            raise ValueError(f"{self.name}: give templates or cases")
        return self


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    seed: int = 0
    fillers: dict[str, list[str]]
    tests: list[BehaviourTest]


def load_suite(path: Path = SUITE_FILE) -> Suite:
    try:
        suite = Suite.model_validate(load_yaml(path, "behaviour suite"))
    except YamlFileError as exc:
        raise InferenceError(str(exc)) from None
    except ValidationError as exc:
        raise InferenceError(f"behaviour suite {path} is not valid: {exc}") from None
    for test in suite.tests:
        for template in test.templates:
            missing = set(placeholders(template)) - set(suite.fillers)
            if missing:
                raise InferenceError(
                    f"behaviour suite {path}: test {test.name} uses unknown filler(s) {sorted(missing)}"
                )
    return suite


def placeholders(template: str) -> list[str]:
    return sorted({name for _, name, _, _ in string.Formatter().parse(template) if name})


def expand(template: str, fillers: dict[str, list[str]], fixed: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Every assignment of filler values to the template's placeholders (``fixed`` ones held)."""
    fixed = fixed or {}
    names = [n for n in placeholders(template) if n not in fixed]
    return [fixed | dict(zip(names, values, strict=True)) for values in itertools.product(*(fillers[n] for n in names))]


@dataclass(frozen=True)
class Case:
    """One unit that passes or fails: an mft text, an inv group, or a dir (base, changed) pair."""

    texts: tuple[str, ...]


def build_cases(test: BehaviourTest, suite: Suite) -> list[Case]:
    rng = random.Random(f"{suite.seed}:{test.name}")
    cases: list[Case] = []
    if test.type == "inv":
        swap = test.swap or ""
        for template in test.templates:
            # One group per assignment of the other fillers; inside it only the swapped filler changes.
            for held in expand(template.replace("{" + swap + "}", ""), suite.fillers):
                cases.append(Case(tuple(template.format(**held, **{swap: v}) for v in suite.fillers[swap])))
        cases += [Case((text,)) for text in test.cases]  # a literal inv case: one text, trivially invariant
    else:
        texts = [template.format(**a) for template in test.templates for a in expand(template, suite.fillers)]
        texts = list(dict.fromkeys(texts))
        if test.sample is not None and len(texts) > test.sample:
            texts = rng.sample(texts, test.sample)
        texts += [t for t in test.cases if t not in texts]
        if test.type == "dir":
            cases = [Case((base, base + suffix)) for base in texts for suffix in test.suffixes]
        else:
            cases = [Case((text,)) for text in texts]
    if test.type == "inv" and test.sample is not None and len(cases) > test.sample:
        cases = rng.sample(cases, test.sample)
    return cases


def check(test: BehaviourTest, preds: Sequence[Prediction]) -> tuple[bool, str]:
    """Whether one case passed, and what the model said (for the failure list)."""
    if test.type == "mft":
        (p,) = preds
        want = test.expect or ""
        ok = p.label != want.removeprefix("not_") if want.startswith("not_") else p.label == want
        return ok, f"{p.label} {p.score:+.2f}"
    if test.type == "inv":
        labels = [p.label for p in preds]
        return len(set(labels)) == 1, " / ".join(labels)
    base, changed = preds
    return changed.score <= base.score + test.tolerance, f"{base.score:+.2f} -> {changed.score:+.2f}"


@dataclass
class TestResult:
    name: str
    capability: str
    type: str
    counted: bool
    expect: str
    cases: int = 0
    passed: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)  # first EXAMPLES failing cases

    @property
    def pass_rate(self) -> float:
        return self.passed / self.cases if self.cases else 0.0


@dataclass
class CapabilityResult:
    name: str
    tests: list[TestResult]

    @property
    def cases(self) -> int:
        return sum(t.cases for t in self.tests)

    @property
    def passed(self) -> int:
        return sum(t.passed for t in self.tests)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.cases if self.cases else 0.0

    @property
    def types(self) -> str:
        return "/".join(sorted({t.type for t in self.tests}))


@dataclass
class BehaviourReport:
    model: str
    suite_version: str
    capabilities: dict[str, CapabilityResult]

    def _rate(self, keep) -> float | None:
        tests = [t for c in self.capabilities.values() for t in c.tests if keep(t)]
        cases = sum(t.cases for t in tests)
        return sum(t.passed for t in tests) / cases if cases else None

    @property
    def mft_pass_rate(self) -> float | None:
        """Pass rate over the counted minimum-functionality cases (the >= 90% target)."""
        return self._rate(lambda t: t.type == "mft" and t.counted)

    @property
    def pass_rates(self) -> dict[str, float]:
        return {name: c.pass_rate for name, c in self.capabilities.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "suite_version": self.suite_version,
            "mft_pass_rate": self.mft_pass_rate,
            "inv_pass_rate": self._rate(lambda t: t.type == "inv"),
            "dir_pass_rate": self._rate(lambda t: t.type == "dir"),
            "capabilities": {
                name: {
                    "pass_rate": c.pass_rate,
                    "cases": c.cases,
                    "passed": c.passed,
                    "tests": [
                        {
                            "name": t.name,
                            "type": t.type,
                            "counted": t.counted,
                            "expect": t.expect,
                            "cases": t.cases,
                            "passed": t.passed,
                            "pass_rate": t.pass_rate,
                            "failures": t.failures,
                        }
                        for t in c.tests
                    ],
                }  # fmt: skip
                for name, c in self.capabilities.items()
            },
        }

    def to_markdown(self, examples: int = 3) -> str:
        """A pass-rate table per capability, then each test's rate with a few failing cases."""
        mft = self.mft_pass_rate
        lines = [
            f"Behavioural suite v{self.suite_version} (CheckList-style), model {self.model}: "
            f"minimum-functionality pass rate **{'–' if mft is None else f'{mft:.1%}'}** (sarcasm not counted).",
            "",
            "| capability | type | cases | pass rate |",
            "|---|---|---|---|",
        ]
        for name, c in self.capabilities.items():
            note = "" if all(t.counted for t in c.tests) else " (not counted)"
            lines.append(f"| {name}{note} | {c.types} | {c.cases} | {c.pass_rate:.1%} |")
        lines += ["", "| test | expect | cases | pass rate | failing examples |", "|---|---|---|---|---|"]
        for c in self.capabilities.values():
            for t in c.tests:
                shown = "; ".join(f"{f['text']} → {f['got']}" for f in t.failures[:examples]).replace("|", "\\|")
                lines.append(f"| {t.name} | {t.expect} | {t.cases} | {t.pass_rate:.1%} | {shown} |")
        return "\n".join(lines) + "\n"


def _expect_text(test: BehaviourTest) -> str:
    if test.type == "inv":
        return f"same label whatever the {test.swap}"
    if test.type == "dir":
        return f"score not higher (+{test.tolerance:g}) after a negative clause"
    return (test.expect or "").replace("not_", "not ")


def run_suite(scorer: Scorer, suite: Suite | Path | None = None) -> BehaviourReport:
    """Score every case of the suite (the shipped one by default) with ``scorer`` in one batch and grade it."""
    suite = suite if isinstance(suite, Suite) else load_suite(suite or SUITE_FILE)
    built = [(test, build_cases(test, suite)) for test in suite.tests]
    texts = list(dict.fromkeys(t for _, cases in built for case in cases for t in case.texts))
    by_text = dict(zip(texts, scorer.score(texts), strict=True))
    capabilities: dict[str, CapabilityResult] = {}
    for test, cases in built:
        result = TestResult(test.name, test.capability, test.type, test.counted, _expect_text(test), len(cases))
        for case in cases:
            ok, got = check(test, [by_text[t] for t in case.texts])
            result.passed += ok
            if not ok and len(result.failures) < EXAMPLES:
                # An inv group: its first text stands for the group, ``got`` lists every member's label.
                result.failures.append({"text": case.texts[-1] if test.type == "dir" else case.texts[0], "got": got})
        capabilities.setdefault(test.capability, CapabilityResult(test.capability, [])).tests.append(result)
    return BehaviourReport(f"{scorer.name} {scorer.version}".strip(), suite.version, capabilities)
