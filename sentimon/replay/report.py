"""The replay report: totals (scored, duplicates, late, dead letters by reason), throughput, volume and
sentiment over time per model, accuracy where messages carry a gold ``label``, agreement between two models with
disagreement examples, alert episodes against planted ones, and an alert diff. JSON, Markdown and a PNG plot
(drawn from the JSON alone).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sentimon.inference.evaluation import label_index, metrics
from sentimon.replay.drift import replay_drift
from sentimon.replay.run import ModelRun, ReplayStats
from sentimon.replay.timeline import LABELS, Episode, score_detection
from sentimon.streams.rollout import compare

ALERT_MATCH_TOLERANCE_MS = 30 * 60_000  # the same (rule, entity) alert from both models within 30 min is "both"
TARGET_POINTS = 200  # the series' bucket is the smallest round step giving at most this many points
ROUND_STEPS_MS = [m * 60_000 for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)]
STATUS_MEANING = {
    "applied": "applied to the windows (what `windows`, `top` and the alert rules read)",
    "duplicate": "an id already counted in its minute (a re-sent message): scored, not counted again",
    "late": "older than the allowed lateness behind its partition's progress: scored, not counted",
}


def _ms(iso: str | None) -> int | None:
    return int(datetime.fromisoformat(iso).timestamp() * 1000) if iso else None


def bucket_for(span_ms: int, points: int = TARGET_POINTS) -> int:
    """The smallest round step (1 min ... 1 week) that covers ``span_ms`` in at most ``points`` buckets."""
    for step in ROUND_STEPS_MS:
        if span_ms <= step * points:
            return step
    return ROUND_STEPS_MS[-1] * -(-span_ms // (ROUND_STEPS_MS[-1] * points))


def firing_alerts(run: ModelRun) -> list[dict]:
    """The alert episodes the run fired: start, and end when a resolved notification closed it (None: still
    firing when the replay ended)."""
    resolved = {
        n.get("episode"): n.get("resolved_at") or n.get("at")
        for n in run.notifications
        if n.get("kind") == "resolved" and n.get("episode")
    }  # fmt: skip
    return [
        {
            "rule": n["rule"],
            "entity": n["entity"],
            "severity": n.get("severity"),
            "summary": n.get("summary"),
            "started_at": n["started_at"],
            "started_at_ms": _ms(n["started_at"]),
            "resolved_at_ms": _ms(resolved.get(n.get("episode"))),
        }  # fmt: skip
        for n in run.notifications
        if n.get("kind") == "firing"
    ]


def accuracy(run: ModelRun) -> dict[str, Any] | None:
    """Metrics (``inference.evaluation``) of the scored events whose message carried a gold ``label``."""
    gold = {mid: label_index(ev.extra.get("label")) for mid, ev in run.events.items()}
    labelled = {mid: index for mid, index in gold.items() if index is not None}
    if not labelled:
        return None
    probs = [[run.events[mid].probs[label] for label in LABELS] for mid in labelled]
    return metrics(np.array(probs), list(labelled.values())).as_dict()


def series(run: ModelRun, bucket_ms: int, first_ms: int | None = None, last_ms: int | None = None) -> list[dict]:
    """Volume and sentiment per ``bucket_ms`` of event time: ``n``, the count of each label and the mean score.
    Every bucket from ``first_ms`` to ``last_ms`` is listed, empty ones with n = 0 (a gap is data too)."""
    counts: dict[int, Counter] = {}
    sums: dict[int, float] = {}
    for ev in run.events.values():
        start = ev.ts_ms - ev.ts_ms % bucket_ms
        counts.setdefault(start, Counter())[ev.label] += 1
        sums[start] = sums.get(start, 0.0) + float(ev.score)
    if not counts:
        return []
    low = min(counts) if first_ms is None else min(min(counts), first_ms - first_ms % bucket_ms)
    high = max(counts) if last_ms is None else max(max(counts), last_ms - last_ms % bucket_ms)
    rows = []
    for start in range(low, high + 1, bucket_ms):
        c = counts.get(start, Counter())
        n = sum(c.values())
        rows.append({"start_ms": start, "n": n, **{label: c[label] for label in LABELS},
                     "mean_score": round(sums[start] / n, 4) if n else None})  # fmt: skip
    return rows


def totals(run: ModelRun) -> dict[str, Any]:
    """What became of every record: scored deliveries by window status, and dead letters by reason."""
    return {
        "scored": sum(run.statuses.values()),
        "unique_messages": len(run.events),
        **{status: run.statuses.get(status, 0) for status in STATUS_MEANING},
        "dead_letters": sum(run.dead_letters.values()),
        "dead_letters_by_reason": dict(run.dead_letters.most_common()),
    }


def agreement(a: ModelRun, b: ModelRun, examples: int = 10) -> dict[str, Any]:
    """How ``b`` (the candidate) agrees with ``a`` (the champion) on the messages both scored: the canary's own
    comparator (``streams.rollout.compare``), so an offline A/B on history gives the analysis numbers a rollout
    would, plus disagreement examples."""
    common = [mid for mid in a.events if mid in b.events]
    differ = [mid for mid in common if a.events[mid].label != b.events[mid].label]
    pairs: dict[str, dict[str, int]] = {}
    for mid in common:
        row = pairs.setdefault(a.events[mid].label, {})
        row[b.events[mid].label] = row.get(b.events[mid].label, 0) + 1
    analysis = compare(pairs)
    return {
        "n": len(common),
        "rate": analysis.agreement,
        "label_mix_distance": analysis.label_mix_distance,
        "matrix": analysis.confusion,  # champion label -> candidate label -> messages
        "confusion": Counter(f"{a.events[m].label}->{b.events[m].label}" for m in differ).most_common(),
        "disagreements": [
            {
                "id": m,
                "text": a.events[m].text[:280],
                a.name: a.events[m].label,
                b.name: b.events[m].label,
                "gold": a.events[m].extra.get("label"),
            }  # fmt: skip
            for m in differ[:examples]
        ],
    }


def alert_diff(a: list[dict], b: list[dict], tolerance_ms: int = ALERT_MATCH_TOLERANCE_MS) -> dict[str, list]:
    unmatched_b = list(b)
    both, only_a = [], []
    for alert in sorted(a, key=lambda x: x["started_at_ms"]):
        candidates = [
            x for x in unmatched_b
            if (x["rule"], x["entity"]) == (alert["rule"], alert["entity"])
            and abs(x["started_at_ms"] - alert["started_at_ms"]) <= tolerance_ms
        ]  # fmt: skip
        if candidates:
            match = min(candidates, key=lambda x: abs(x["started_at_ms"] - alert["started_at_ms"]))
            unmatched_b.remove(match)
            offset_s = (match["started_at_ms"] - alert["started_at_ms"]) / 1000
            both.append({"rule": alert["rule"], "entity": alert["entity"], "started_at": alert["started_at"],
                         "offset_s": offset_s})  # fmt: skip
        else:
            only_a.append(alert)
    return {"both": both, "only_a": only_a, "only_b": unmatched_b}


def build(
    runs: list[ModelRun],
    stats: ReplayStats,
    *,
    topic: str,
    episodes: list[Episode] | None = None,
    bucket_ms: int | None = None,
) -> dict[str, Any]:
    span = (stats.last_ts_ms or 0) - (stats.first_ts_ms or 0)
    bucket_ms = bucket_ms or bucket_for(span)
    report: dict[str, Any] = {
        "topic": topic,
        "records": stats.records,
        "wall_s": round(stats.wall_s, 3),
        "event_time": {
            "first": _iso(stats.first_ts_ms),
            "last": _iso(stats.last_ts_ms),
            "first_ms": stats.first_ts_ms,
            "last_ms": stats.last_ts_ms,
        },  # fmt: skip
        "bucket_ms": bucket_ms,
        "status_meaning": STATUS_MEANING,
        "episodes": [ep.as_dict() for ep in episodes] if episodes is not None else None,
        "models": {},
    }
    for run in runs:
        alerts = firing_alerts(run)
        entry = {
            "namespace": run.settings.windows.prefix,
            "scored": len(run.events),
            "totals": totals(run),
            "dead_letters": sum(run.dead_letters.values()),
            "texts_per_s": round(len(run.events) / run.busy_s, 1) if run.busy_s else None,
            "label_mix": dict(Counter(ev.label for ev in run.events.values())),
            "accuracy": accuracy(run),
            "alerts": alerts,
            "series": series(run, bucket_ms, stats.first_ts_ms, stats.last_ts_ms),
            "drift": replay_drift(run),  # against the drift reference (README "Drift"); None without one
        }
        if episodes is not None:
            detection = score_detection(alerts, episodes)
            entry["detection"] = asdict(detection)
        report["models"][run.name] = entry
    if len(runs) == 2:
        a, b = runs
        report["comparison"] = {
            "a": a.name,
            "b": b.name,
            "agreement": agreement(a, b),
            "alerts": alert_diff(report["models"][a.name]["alerts"], report["models"][b.name]["alerts"]),
        }
    return report


def _iso(ms: int | None) -> str | None:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat() if ms is not None else None


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def markdown(report: dict[str, Any], plot_name: str | None = None) -> str:
    lines = [
        f"# Replay of `{report['topic']}`",
        "",
        f"{report['records']:,} records, event time {report['event_time']['first']} to "
        f"{report['event_time']['last']}, replayed in {report['wall_s']:.1f} s.",
        "",
        "| model | scored | dead letters | texts/s | negative | neutral | positive | accuracy | macro-F1 | alerts |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in report["models"].items():
        total = max(1, m["scored"])
        acc = m["accuracy"] or {}
        mix = [_pct(m["label_mix"].get(label, 0) / total) for label in LABELS]
        lines.append(
            f"| {name} | {m['scored']:,} | {m['dead_letters']:,} | {m['texts_per_s'] or '-'} | {' | '.join(mix)} | "
            f"{_pct(acc.get('accuracy'))} | {_pct(acc.get('macro_f1'))} | {len(m['alerts'])} |"
        )
    lines += _totals_markdown(report)
    if plot_name:
        lines += ["", f"![volume, negative share and alert episodes over time]({plot_name})", "",
                  f"Plotted per {_duration(report['bucket_ms'])} of event time."]  # fmt: skip
    lines += _drift_markdown(report)
    for name, m in report["models"].items():
        if "detection" in m:
            d = m["detection"]
            delays = ", ".join(f"{k}: {v:.0f} s" for k, v in d["delays_s"].items()) or "-"
            lines += ["", f"**{name}** vs planted episodes: precision {_pct(d['precision'])}, recall "
                      f"{_pct(d['recall'])}; detection delays {delays}."]  # fmt: skip
    if "comparison" in report:
        c = report["comparison"]
        ag = c["agreement"]
        distance = "-" if ag.get("label_mix_distance") is None else f"{ag['label_mix_distance']:.3f}"
        lines += ["", f"## {c['a']} vs {c['b']}", "", f"Label agreement {_pct(ag['rate'])} on {ag['n']:,} messages; "
                  f"label-mix distance (Jensen-Shannon) {distance}."]  # fmt: skip
        if ag["disagreements"]:
            lines += ["", f"| text | {c['a']} | {c['b']} | gold |", "|---|---|---|---|"]
            for d in ag["disagreements"]:
                text = d["text"].replace("|", "\\|").replace("\n", " ")
                lines.append(f"| {text} | {d[c['a']]} | {d[c['b']]} | {d['gold'] or '-'} |")
        al = c["alerts"]
        lines += ["", f"Alerts: {len(al['both'])} fired by both, {len(al['only_a'])} by {c['a']} only, "
                      f"{len(al['only_b'])} by {c['b']} only.", ""]  # fmt: skip
        for kind, who in (("both", "both"), ("only_a", f"{c['a']} only"), ("only_b", f"{c['b']} only")):
            for x in al[kind]:
                offset = f" ({x['offset_s']:+.0f} s)" if "offset_s" in x else ""
                lines.append(f"- {who}: `{x['rule']}` on **{x['entity']}** at {x['started_at']}{offset}")
    return "\n".join(lines) + "\n"


def _drift_markdown(report: dict[str, Any]) -> list[str]:
    """Per model and topic: windows compared with the drift reference, peak figures, first window each signal
    drifted at."""
    rows = [(name, t) for name, m in report["models"].items() for t in (m.get("drift") or {}).get("topics", [])]
    if not rows:
        return []
    lines = ["", "## Drift against the reference", "",
             "| model | topic | windows | max JS | max conf. PH | max length z | max unk. z | drifted (first window) |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, t in rows:
        first = ", ".join(f"{s} {d['window']}" for s, d in t["first_detected"].items()) or "none"
        unk = "-" if t["max_abs_unk_z"] is None else f"{t['max_abs_unk_z']:.1f}"
        lines.append(f"| {name} | {t['topic']} | {t['windows']} | {t['max_label_js']:.3f} | "
                     f"{t['max_confidence_ph']:.1f} | {t['max_abs_length_z']:.1f} | {unk} | {first} |")  # fmt: skip
    return lines


def _totals_markdown(report: dict[str, Any]) -> list[str]:
    """What became of every record, per model, with what each column means."""
    lines = ["", "## What became of the records", "",
             "| model | records | counted | duplicates | late | dead letters | dead letters by reason |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, m in report["models"].items():
        t = m["totals"]
        reasons = ", ".join(f"{reason} {n:,}" for reason, n in t["dead_letters_by_reason"].items()) or "-"
        lines.append(f"| {name} | {report['records']:,} | {t['applied']:,} | {t['duplicate']:,} | {t['late']:,} | "
                     f"{t['dead_letters']:,} | {reasons} |")  # fmt: skip
    meaning = report.get("status_meaning", STATUS_MEANING)
    lines += ["", f"Counted: {meaning['applied']}. Duplicates: {meaning['duplicate']}. Late: {meaning['late']}. "
              "Dead letters: records the worker would refuse (not JSON, a lone surrogate, empty text, ...), under "
              "the reason the live worker gives them on its dead-letter topic; they never stop a replay."]  # fmt: skip
    return lines


def _duration(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000)):
        if ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms / 1000:g} s"


def figure(report: dict[str, Any], episodes: list[Episode] | None = None):
    """The report's plot as a matplotlib Figure, from the report alone: per model, volume (top) and negative
    share (middle) per bucket; alert episodes as bars, one row per model (bottom); planted episodes shaded on
    every panel. Only what is drawn gets a legend entry."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.dates import date2num

    def when(ms: int) -> float:
        return float(date2num(datetime.fromtimestamp(ms / 1000, UTC)))

    planted = [ep.as_dict() for ep in episodes] if episodes is not None else (report.get("episodes") or [])
    models = list(report["models"].items())
    bucket = report["bucket_ms"]
    last = report["event_time"].get("last_ms")
    ratios = [2, 2, 0.4 + 0.4 * len(models)]  # the alert panel: one row per model
    fig, (ax_n, ax_neg, ax_al) = plt.subplots(3, 1, figsize=(11, 7), sharex=True, gridspec_kw={"height_ratios": ratios})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, m) in enumerate(models):
        color = colors[i % len(colors)]
        rows = m["series"]
        xs = [when(b["start_ms"]) for b in rows]
        ax_n.step(xs, [b["n"] for b in rows], where="post", color=color, label=f"{name}: messages")
        ax_neg.plot(xs, [b["negative"] / b["n"] if b["n"] else float("nan") for b in rows], color=color,
                    label=f"{name}: negative share")  # fmt: skip
        bars = [(when(a["started_at_ms"]), when(a["resolved_at_ms"] or last or a["started_at_ms"] + bucket)
                 - when(a["started_at_ms"])) for a in m["alerts"]]  # fmt: skip
        if bars:
            ax_al.broken_barh(bars, (i - 0.35, 0.7), color=color, alpha=0.7, label=f"{name}: alert episodes")
            for a, (x, _) in zip(m["alerts"], bars, strict=True):
                ax_al.text(x, i, f" {a['entity']}", va="center", fontsize=7)
    for j, ep in enumerate(planted):
        for ax in (ax_n, ax_neg, ax_al):
            ax.axvspan(when(ep["start_ms"]), when(ep["end_ms"]), alpha=0.12, color="red",
                       label="planted episode" if (j == 0 and ax is ax_neg) else None)  # fmt: skip
    ax_n.set_ylabel(f"messages per {_duration(bucket)}")
    ax_n.set_ylim(bottom=0)
    ax_neg.set_ylabel("negative share")
    ax_neg.set_ylim(0, 1)
    ax_al.set_yticks(range(len(models)), [name for name, _ in models])
    ax_al.set_ylim(-0.6, len(models) - 0.4)
    ax_al.set_ylabel("alerts")
    ax_al.xaxis_date(UTC)
    for ax in (ax_n, ax_neg, ax_al):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=8)
    title = f"Replay of {report['topic']}: bars = alert episodes (fired to resolved)"
    ax_n.set_title(title + ("; shaded = planted episodes" if planted else ""))
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def plot(report: dict[str, Any], path: Path, episodes: list[Episode] | None = None) -> None:
    import matplotlib.pyplot as plt

    fig = figure(report, episodes)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(report: dict[str, Any], path: Path, episodes: list[Episode] | None = None) -> dict[str, Path]:
    """Write ``path`` (.json), its .md twin and a .png plot; returns the three paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path, png_path = path.with_suffix(".json"), path.with_suffix(".md"), path.with_suffix(".png")
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    plot(report, png_path, episodes)
    md_path.write_text(markdown(report, png_path.name))
    return {"json": json_path, "markdown": md_path, "plot": png_path}
