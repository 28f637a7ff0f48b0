"""The drift statistics: Jensen–Shannon distance, Page–Hinkley, reference building, the monitor's detection delay
and its silence on steady streams (synthetic scored events: pure logic, no services)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from scipy.spatial.distance import jensenshannon

from sentimon.inference.drift import (
    DriftError,
    DriftMonitor,
    DriftReference,
    Observation,
    PageHinkley,
    Thresholds,
    build_reference,
    js_distance,
    replay_figures,
)

LABELS = ("negative", "neutral", "positive")
STEADY_MIX = (0.3, 0.45, 0.25)
SHIFTED_MIX = (0.6, 0.3, 0.1)  # a negative wave: JS distance ~0.22 from the steady mix
WINDOW = 500
TINY = Path(__file__).resolve().parents[1] / "assets" / "tiny-bundle"


def events(rng: random.Random, n: int, mix=STEADY_MIX, conf=(0.8, 0.1), length=(90, 40), topic="t", model="m"):
    for _ in range(n):
        label = rng.choices(LABELS, mix)[0]
        c = min(max(rng.gauss(*conf), 1 / 3), 1.0)
        yield Observation(model, topic, label, c, max(1, int(rng.gauss(*length))))


def reference(seed: int = 0, windows: int = 6, **kw) -> DriftReference:
    return build_reference(events(random.Random(seed), windows * WINDOW, **kw), WINDOW, source="test")


def test_js_distance_bounds_symmetry_and_scipy_agreement() -> None:
    assert js_distance({"a": 3, "b": 1}, {"a": 6, "b": 2}) == pytest.approx(0.0, abs=1e-9)
    assert js_distance({"a": 1}, {"b": 1}) == pytest.approx(1.0)
    p, q = {"a": 1.0, "b": 0.0}, {"a": 0.5, "b": 0.5}
    # By hand: M = (.75, .25); KL(p|M) = log2(4/3); KL(q|M) = (log2(2/3) + 1) / 2.
    by_hand = math.sqrt((math.log2(4 / 3) + (math.log2(2 / 3) + 1) / 2) / 2)
    assert js_distance(p, q) == pytest.approx(by_hand) == pytest.approx(js_distance(q, p))
    rng = random.Random(3)
    for _ in range(50):
        a, b = [rng.random() for _ in LABELS], [rng.random() for _ in LABELS]
        ours = js_distance(dict(zip(LABELS, a, strict=True)), dict(zip(LABELS, b, strict=True)))
        assert ours == pytest.approx(jensenshannon(a, b, base=2), abs=1e-9)
    with pytest.raises(ValueError):
        js_distance({}, {"a": 1})


def test_page_hinkley_detects_a_three_sigma_shift_within_a_few_steps() -> None:
    delays = []
    for seed in range(50):
        rng = random.Random(seed)
        ph = PageHinkley(delta=0.5, threshold=8.0, count=6)
        for _ in range(30):
            ph.update(rng.gauss(0, 1))
        assert not ph.alarm
        for step in range(1, 50):
            ph.update(rng.gauss(-3, 1))  # a fall: confidence dropping
            if ph.alarm:
                delays.append(step)
                break
    assert len(delays) == 50
    print(f"\nPage-Hinkley (delta 0.5, threshold 8): 3-sigma fall detected after {min(delays)}-{max(delays)} "
          f"steps, mean {sum(delays) / len(delays):.1f}")  # fmt: skip
    assert max(delays) <= 6


def test_page_hinkley_stays_quiet_on_a_steady_stream_and_clears_after_the_shift() -> None:
    for seed in range(50):
        rng = random.Random(seed)
        ph = PageHinkley(delta=0.5, threshold=8.0)
        assert not any(ph.update(rng.gauss(0, 1)) >= ph.threshold for _ in range(100)), seed
    # The false-alarm rate behind it: alarms per step on N(0, 1).
    alarms, steps = 0, 200 * 1000
    for seed in range(200):
        rng, ph = random.Random(seed), PageHinkley(delta=0.5, threshold=8.0)
        for _ in range(1000):
            if ph.update(rng.gauss(0, 1)) >= ph.threshold:
                alarms, _ = alarms + 1, ph.reset()
    print(f"\nPage-Hinkley false alarms on a steady stream: {alarms} in {steps:,} windows")
    assert alarms <= steps / 5000
    # A lasting shift: alarm, then quiet once the running mean has taken in the new level; the way back is a
    # change too.
    ph = PageHinkley(delta=0.5, threshold=8.0, count=6)
    levels = [ph.update(4.0) for _ in range(200)]
    assert levels[3] >= 8.0 and max(levels) == pytest.approx(12.0)  # capped at 1.5 x threshold
    assert not ph.alarm
    assert any(ph.update(0.0) >= 8.0 for _ in range(10))


def test_reference_has_the_mix_and_window_sigmas_and_round_trips(tmp_path: Path) -> None:
    ref = reference(windows=8)
    r = ref.get("m", "t")
    assert r is not None and r.windows == 8 and r.events == 8 * WINDOW
    assert sum(r.label_mix.values()) == pytest.approx(1.0)
    for label, share in zip(LABELS, STEADY_MIX, strict=True):
        assert r.label_mix[label] == pytest.approx(share, abs=0.03)
    assert r.confidence.mean == pytest.approx(0.8, abs=0.01)
    # Window means of 500 events: sigma ~ 0.1 / sqrt(500), never below that floor.
    assert 0.1 / math.sqrt(WINDOW) * 0.9 <= r.confidence.sigma <= 0.1 / math.sqrt(WINDOW) * 2
    assert r.unk_rate is None  # nothing was tokenized
    path = tmp_path / "ref.json"
    ref.save(path)
    again = DriftReference.load(path)
    assert again == ref


def test_reference_needs_enough_windows_and_a_valid_file(tmp_path: Path) -> None:
    with pytest.raises(DriftError, match="6 full windows of 500 events.*m on t: 5"):
        build_reference(events(random.Random(1), 5 * WINDOW + 499), WINDOW)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 99}')
    with pytest.raises(DriftError, match="is not a drift reference"):
        DriftReference.load(bad)
    with pytest.raises(DriftError, match="cannot be read.*sentimon drift reference"):
        DriftReference.load(tmp_path / "missing.json")


def _first_detection(monitor: DriftMonitor, stream, signal: str) -> tuple[int, int] | None:
    for o in stream:
        r = monitor.observe(o)
        if r is not None and r.detected[signal]:
            return r.index, r.events_seen
    return None


def test_a_steady_stream_raises_no_signal_over_many_seeds() -> None:
    for seed in range(30):
        monitor = DriftMonitor(reference(seed=1000 + seed), Thresholds())
        for o in events(random.Random(seed), 40 * WINDOW):
            r = monitor.observe(o)
            assert r is None or not any(r.detected.values()), (seed, r and r.as_dict())
        assert monitor.tracks[("m", "t")].windows == 40


@pytest.mark.parametrize(
    ("signal", "shifted"),
    [
        ("label_mix", {"mix": SHIFTED_MIX}),
        ("confidence", {"conf": (0.7, 0.1)}),  # mean confidence down by 0.1: ~22 window sigmas
        ("text_length", {"length": (60, 40)}),
    ],
)
def test_a_planted_shift_is_detected_and_the_delay_measured(signal: str, shifted: dict) -> None:
    shift_at = 10 * WINDOW + 137  # mid-window: the first shifted window is mixed
    delays = []
    for seed in range(10):
        rng = random.Random(seed)
        stream = [*events(rng, shift_at), *events(rng, 20 * WINDOW, **shifted)]
        found = _first_detection(DriftMonitor(reference(seed=500 + seed), Thresholds()), stream, signal)
        assert found is not None, seed
        delays.append(found[1] - shift_at)
    windows = [d / WINDOW for d in delays]
    print(f"\n{signal}: detected {min(delays)}-{max(delays)} events after the shift ({min(windows):.1f}-"
          f"{max(windows):.1f} windows of {WINDOW}), confirm_windows 2")  # fmt: skip
    assert 0 < min(delays) and max(delays) <= 3 * WINDOW


def test_unknown_token_rate_signal_and_the_tokenizer_counter() -> None:
    from sentimon.inference.unknown_tokens import UnknownTokens

    counter = UnknownTokens.from_bundle(TINY)
    assert counter is not None
    (known, total), (unknown, total2) = counter.count(["i love it", "zzqx flurbs blorp"])
    assert known == 0 and total == 3 and unknown == total2 and unknown > 0
    assert UnknownTokens.from_bundle(TINY.parent / "no-such-bundle") is None

    def stream(rng: random.Random, n: int, unk_p: float):
        for o in events(rng, n):
            tokens = 20
            unk = sum(rng.random() < unk_p for _ in range(tokens))
            yield Observation(o.model, o.topic, o.label, o.confidence, o.length, unk, tokens)

    ref = build_reference(stream(random.Random(1), 6 * WINDOW, 0.02), WINDOW)
    r = ref.get("m", "t")
    assert r is not None and r.unk_rate is not None and r.unk_rate.mean == pytest.approx(0.02, abs=0.003)
    monitor = DriftMonitor(ref)
    rng = random.Random(2)
    found = _first_detection(monitor, [*stream(rng, 5 * WINDOW, 0.02), *stream(rng, 5 * WINDOW, 0.06)],
                             "unknown_tokens")  # fmt: skip
    assert found is not None and found[0] in (6, 7)


def test_events_without_a_reference_are_ignored_and_replay_figures_name_the_first_detection() -> None:
    ref = reference()
    monitor = DriftMonitor(ref)
    assert all(monitor.observe(o) is None for o in events(random.Random(1), 2 * WINDOW, topic="other"))
    assert not monitor.tracks
    rng = random.Random(4)
    stream = [*events(rng, 4 * WINDOW), *events(rng, 4 * WINDOW, mix=SHIFTED_MIX)]
    (row,) = replay_figures(stream, ref)
    assert row["windows"] == 8 and row["max_label_js"] >= 0.1
    assert row["first_detected"]["label_mix"] == {"window": 5, "events_seen": 6 * WINDOW}
    assert replay_figures(stream, None) == []
