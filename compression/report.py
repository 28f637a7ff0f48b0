"""The build report: Markdown table of every candidate on every test split + a PNG accuracy-vs-speed plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PRETTY = {
    "vader": "VADER (lexicon)", "teacher_fp32": "teacher fp32", "student_fp32": "student fp32",
    "student_int8": "student int8", "pruned_fp32": "pruned fp32", "pruned_int8": "pruned int8",
    "lowrank_fp32": "low-rank fp32", "lowrank_int8": "low-rank int8", "static": "static (fast tier)",
}  # fmt: skip


def mean_metric(entry: dict[str, Any], key: str) -> float:
    values = [m[key] for m in entry["metrics"].values() if key in m]
    return sum(values) / len(values) if values else float("nan")


def targets(results: dict[str, Any], student: str = "student_int8") -> list[tuple[str, bool, str]]:
    """The issue's targets, checked on the measured numbers: (what, met, detail)."""
    out = []
    teacher, s_fp, s_q, vader = (results.get(k) for k in ("teacher_fp32", "student_fp32", student, "vader"))
    if teacher and s_fp:
        t_f1, s_f1 = mean_metric(teacher, "macro_f1"), mean_metric(s_fp, "macro_f1")
        ratio = s_f1 / t_f1 if t_f1 else 0.0
        out.append(("student macro-F1 >= 97% of teacher's", ratio >= 0.97,
                    f"{s_f1:.4f} vs {t_f1:.4f} = {ratio:.1%} (mean over test splits)"))  # fmt: skip
    if s_fp and s_q:
        worst = max(s_fp["metrics"][n]["accuracy"] - s_q["metrics"][n]["accuracy"] for n in s_fp["metrics"])
        out.append(("int8 costs <= 0.5 pt accuracy vs fp32 student", worst <= 0.005,
                    f"largest drop over splits {100 * worst:+.2f} pt"))  # fmt: skip
    if s_q and vader:
        gaps = {n: s_q["metrics"][n]["binary_accuracy"] - vader["metrics"][n]["binary_accuracy"]
                for n in s_q["metrics"] if "binary_accuracy" in s_q["metrics"][n]}  # fmt: skip
        if gaps:
            out.append(("default student >= 10 pt binary accuracy above VADER on every split",
                        min(gaps.values()) >= 0.10,
                        ", ".join(f"{n} {100 * g:+.1f} pt" for n, g in gaps.items())))  # fmt: skip
    return out


def write_report(results: dict[str, Any], out_dir: Path, header: dict[str, Any]) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "report.png"
    plot(results, png)
    splits = sorted({s for r in results.values() for s in r["metrics"]})
    lines = [
        f"# Compression report: recipe `{header['recipe']}`",
        "",
        f"Built {header['date']} on {header['machine']} with `{header['command']}`. Throughput: end to end "
        f"(tokenize + ONNX Runtime), batch {header['batch']}, {header['threads']} threads, {header['texts']} "
        f"test texts, best of 3; every row measured in this run (1-minute load average {header.get('load_avg')} "
        "before/after: other work on the machine makes the speeds noisy, compare rows within one report).",
        "",
        "| model | size MB | texts/s | " + " | ".join(f"{s} acc / F1 / bin-acc" for s in splits) + " |",
        "|---|---:|---:|" + "---:|" * len(splits),
    ]
    for name, entry in results.items():
        size = f"{entry['size_bytes'] / 1e6:.1f}" if entry.get("size_bytes") else "-"
        cells = []
        for s in splits:
            m = entry["metrics"].get(s, {})
            bin_acc = f"{m['binary_accuracy']:.3f}" if "binary_accuracy" in m else "-"
            cells.append(f"{m.get('accuracy', float('nan')):.3f} / {m.get('macro_f1', float('nan')):.3f} / {bin_acc}")
        lines.append(f"| {PRETTY.get(name, name)} | {size} | {entry['texts_per_s']:,.0f} | " + " | ".join(cells) + " |")
    lines += ["", "acc = 3-way accuracy, F1 = macro-F1 over the labels present, bin-acc = accuracy on gold "
              "negative/positive rows deciding by P(pos) vs P(neg).", "", "## Targets", ""]  # fmt: skip
    for what, met, detail in targets(results):
        lines.append(f"- {'met' if met else 'NOT met'}: {what} ({detail})")
    if header.get("parity"):
        lines += ["", "## INT8 parity (fp32 vs int8 on all test texts)", ""]
        for name, p in header["parity"].items():
            lines.append(f"- {name}: label agreement {p['label_agreement']:.4f}, max |dp| {p['max_prob_diff']:.4f}, "
                         f"mean |dp| {p['mean_prob_diff']:.5f} over {p['texts']} texts")  # fmt: skip
    if header.get("timings"):
        lines += ["", "## Stage times (s)", "", ", ".join(f"{k} {v:.0f}" for k, v in header["timings"].items())]
    lines += ["", f"![accuracy vs throughput]({png.name})", ""]
    md = out_dir / "REPORT.md"
    md.write_text("\n".join(lines))
    return md, png


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for name, entry in results.items():
        x, y = entry["texts_per_s"], 100 * mean_metric(entry, "macro_f1")
        ax.scatter([x], [y], s=40)
        ax.annotate(PRETTY.get(name, name), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("texts / s (log, end to end on this machine)")
    ax.set_ylabel("macro-F1 %, mean over test splits")
    ax.set_title("sentimon compression: accuracy vs throughput")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
