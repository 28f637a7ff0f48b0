"""The replay report: throughput, label mix over time, accuracy where messages carry a gold ``label``,
agreement between two models with disagreement examples, and an alert diff. JSON, Markdown and a PNG plot.
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
from sentimon.replay.run import ModelRun, ReplayStats
from sentimon.replay.timeline import LABELS, Episode, score_detection

ALERT_MATCH_TOLERANCE_MS = 30 * 60_000  # the same (rule, entity) alert from both models within 30 min is "both"


def _ms(iso: str | None) -> int | None:
    return int(datetime.fromisoformat(iso).timestamp() * 1000) if iso else None


def firing_alerts(run: ModelRun) -> list[dict]:
    return [
        {
            "rule": n["rule"],
            "entity": n["entity"],
            "severity": n.get("severity"),
            "summary": n.get("summary"),
            "started_at": n["started_at"],
            "started_at_ms": _ms(n["started_at"]),
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


def label_mix_over_time(run: ModelRun, bucket_ms: int) -> list[dict]:
    buckets: dict[int, Counter] = {}
    for ev in run.events.values():
        buckets.setdefault(ev.ts_ms - ev.ts_ms % bucket_ms, Counter())[ev.label] += 1
    return [{"start_ms": start, **{label: buckets[start][label] for label in LABELS}} for start in sorted(buckets)]


def agreement(a: ModelRun, b: ModelRun, examples: int = 10) -> dict[str, Any]:
    common = [mid for mid in a.events if mid in b.events]
    differ = [mid for mid in common if a.events[mid].label != b.events[mid].label]
    return {
        "n": len(common),
        "rate": (1 - len(differ) / len(common)) if common else None,
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
    bucket_ms = bucket_ms or max(60_000, span // 48 // 60_000 * 60_000)
    report: dict[str, Any] = {
        "topic": topic,
        "records": stats.records,
        "wall_s": round(stats.wall_s, 3),
        "event_time": {"first": _iso(stats.first_ts_ms), "last": _iso(stats.last_ts_ms)},
        "bucket_ms": bucket_ms,
        "models": {},
    }
    for run in runs:
        alerts = firing_alerts(run)
        entry = {
            "namespace": run.settings.windows.prefix,
            "scored": len(run.events),
            "dead_letters": run.dead_letters,
            "texts_per_s": round(len(run.events) / run.busy_s, 1) if run.busy_s else None,
            "label_mix": dict(Counter(ev.label for ev in run.events.values())),
            "accuracy": accuracy(run),
            "alerts": alerts,
            "mix_over_time": label_mix_over_time(run, bucket_ms),
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
            f"| {name} | {m['scored']:,} | {m['dead_letters']} | {m['texts_per_s'] or '-'} | {' | '.join(mix)} | "
            f"{_pct(acc.get('accuracy'))} | {_pct(acc.get('macro_f1'))} | {len(m['alerts'])} |"
        )
    if plot_name:
        lines += ["", f"![negative share over time]({plot_name})"]
    for name, m in report["models"].items():
        if "detection" in m:
            d = m["detection"]
            delays = ", ".join(f"{k}: {v:.0f} s" for k, v in d["delays_s"].items()) or "-"
            lines += ["", f"**{name}** vs planted episodes: precision {_pct(d['precision'])}, recall "
                      f"{_pct(d['recall'])}; detection delays {delays}."]  # fmt: skip
    if "comparison" in report:
        c = report["comparison"]
        ag = c["agreement"]
        lines += ["", f"## {c['a']} vs {c['b']}", "", f"Label agreement {_pct(ag['rate'])} on {ag['n']:,} messages."]
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


def plot(report: dict[str, Any], path: Path, episodes: list[Episode] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.dates import date2num

    def when(ms: int) -> float:
        return float(date2num(datetime.fromtimestamp(ms / 1000, UTC)))

    fig, ax = plt.subplots(figsize=(10, 4))
    for name, m in report["models"].items():
        xs = [when(b["start_ms"]) for b in m["mix_over_time"]]
        ys = [b["negative"] / max(1, sum(b[label] for label in LABELS)) for b in m["mix_over_time"]]
        ax.plot(xs, ys, label=f"{name}: negative share")
        for alert in m["alerts"]:
            ax.axvline(when(alert["started_at_ms"]), alpha=0.3, linestyle="--")
    for ep in episodes or []:
        ax.axvspan(when(ep.start_ms), when(ep.end_ms), alpha=0.1, color="red")
    ax.xaxis_date(UTC)
    ax.set_ylabel("negative share")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    ax.set_title(f"Replay of {report['topic']} (dashed: alerts fired; shaded: planted episodes)")
    fig.autofmt_xdate()
    fig.tight_layout()
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
