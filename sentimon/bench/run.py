"""Side-by-side benchmark of every model row, in one run on this machine; writes a BENCHMARKS.md section.

    python -m sentimon.bench.run [--quick] [--labelled FILE ...] [--bundle LABEL=PATH ...] [--write BENCHMARKS.md]
    python -m sentimon.bench.run --accuracy-only [--only LABEL ...] --write BENCHMARKS.md

The accuracy table is its own section, scored through ``inference.evaluation`` like every other report;
``--accuracy-only`` re-scores the test splits without timing anything and rewrites only that section.

Each row is measured in its own subprocess (bench.worker) one after another, never concurrently; ratios are
against the HF pipeline baseline measured in the same run. Targets (issue #4, 2-core CPU) are checked and a
miss says by how much.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from sentimon.bench.rows import BASELINE, Row, discover
from sentimon.bench.texts import LONG_JOIN, default_splits, text_sets
from sentimon.core.host import machine_description as machine
from sentimon.core.settings import Settings, load_settings

START, END = "<!-- bench:inference:start -->", "<!-- bench:inference:end -->"
ACCURACY_START, ACCURACY_END = "<!-- bench:accuracy:start -->", "<!-- bench:accuracy:end -->"
TARGETS = {  # issue #4
    "int8_vs_teacher_tweet": 15.0,
    "batch1_p99_ms": 10.0,
    "static_texts_per_s": 20_000.0,
    "rss_mb": 500.0,
}


def run_row(row: Row, job: dict, timeout_s: float) -> dict:
    payload = json.dumps({**job, "row": row.as_dict()})
    env = {**os.environ, "OMP_NUM_THREADS": str(job["threads"])}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "sentimon.bench.worker"], input=payload, capture_output=True, text=True,
            env=env, timeout=timeout_s,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"row": row.as_dict(), "error": f"timed out after {timeout_s:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"row": row.as_dict(), "error": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def benchmark(
    settings: Settings,
    quick: bool = False,
    labelled: list[Path] | None = None,
    extra: dict[str, str] | None = None,
    teacher: Path | None = None,
    only: list[str] | None = None,
    threads: int = 2,
    say=print,
    timing: bool = True,
) -> dict:
    n = 128 if quick else 512
    job = {
        "threads": threads,
        "timing": timing,
        "batch_sizes": [1, 8, 32] if quick else [1, 8, 32, 128],
        "micro_batch": min(32, settings.stream.max_batch) if quick else settings.stream.max_batch,
        "budget_s": 2.0 if quick else 6.0,
        "latency_calls": 50 if quick else 200,
        "passes": 1 if quick else 3,
    }
    splits = labelled if labelled is not None else default_splits(settings.stack.cache_dir)
    if quick:
        splits = []
    job["splits"] = [str(p) for p in splits]
    load_at_start = os.getloadavg()[0]
    rows, skipped = discover(settings, teacher, extra)
    if only:
        rows = [r for r in rows if any(o.lower() in r.label.lower() for o in only)]
    results = []
    with tempfile.TemporaryDirectory(prefix="sentimon-bench-") as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(text_sets(settings.stack.cache_dir, n) if timing else {}))
        job["texts_file"] = str(texts_file)
        for row in rows:
            say(f"measuring {row.label} ({row.note}) ...")
            results.append(run_row(row, job, timeout_s=900))
            if "error" in results[-1]:
                say(f"  failed: {results[-1]['error']}")
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "loadavg": load_at_start,
        "job": {k: v for k, v in job.items() if k != "texts_file"},
        "text_counts": {},
        "results": results,
        "skipped": skipped,
        "splits": [Path(p).name for p in splits],
    }


# --- report ------------------------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:.2f}"


def targets(report: dict) -> list[str]:
    ok = {r["row"]["label"]: r for r in report["results"] if "error" not in r}
    big = str(max(report["job"]["batch_sizes"]))
    lines = []

    def best(label: str, set_name: str = "tweet") -> float | None:
        r = ok.get(label)
        return max(r["throughput"][set_name].values()) if r else None

    base, int8 = best(BASELINE), best("ORT int8 student")
    if base and int8:
        ratio = int8 / base
        verdict = (
            "met"
            if ratio >= TARGETS["int8_vs_teacher_tweet"]
            else f"MISSED by {TARGETS['int8_vs_teacher_tweet'] / ratio:.1f}x"
        )
        lines.append(f"- int8 student vs fp32 teacher pipeline, tweets (best batch each): {ratio:.1f}x "
                     f"(target >= {TARGETS['int8_vs_teacher_tweet']:.0f}x): {verdict}")  # fmt: skip
    else:
        lines.append("- int8 student vs teacher: not measured (a row is missing)")
    if "ORT int8 student" in ok:
        p99 = ok["ORT int8 student"]["latency_ms"]["1"]["p99"]
        verdict = "met" if p99 <= TARGETS["batch1_p99_ms"] else f"MISSED by {p99 - TARGETS['batch1_p99_ms']:.1f} ms"
        lines.append(f"- int8 student batch-1 p99: {p99:.2f} ms (target <= 10 ms): {verdict}")
    static = best("static tier")
    if static:
        verdict = (
            "met"
            if static >= TARGETS["static_texts_per_s"]
            else f"MISSED by {TARGETS['static_texts_per_s'] / static:.1f}x"
        )
        lines.append(f"- static tier, tweets, batch {big}: {static:,.0f} texts/s (target >= 20,000): {verdict}")
    for label in ("ORT int8 student", "static tier", "cascade"):
        if label in ok:
            mb = ok[label]["peak_rss_bytes"] / 2**20
            verdict = "met" if mb <= TARGETS["rss_mb"] else f"MISSED by {mb - TARGETS['rss_mb']:.0f} MB"
            lines.append(f"- {label} scoring process peak RSS: {mb:.0f} MB (target <= 500 MB): {verdict}")
    return lines


def markdown(report: dict, command: str) -> str:
    ok = [r for r in report["results"] if "error" not in r]
    base = next((r for r in ok if r["row"]["label"] == BASELINE), None)
    job = report["job"]
    sizes = [str(b) for b in job["batch_sizes"]]
    mb = str(job["micro_batch"])
    out = [
        START,
        "## Inference runtime (sentimon/bench/run.py)",
        "",
        f"- Date: {report['date']}",
        f"- Machine: {report['machine']}; {job['threads']} threads per row; rows run one after another, each in "
        "its own process (peak RSS is that process's)",
        f"- Command: `{command}`",
        f"- Host load when the run started (1-min load average over {os.cpu_count()} cores): {report['loadavg']:.1f}. "
        "Above the core count other processes competed for the CPU: absolute numbers are then lower than on a quiet "
        "machine, and ratios are fair only between rows measured under similar load (see the load column).",
        f"- Per (text set, batch size): best of {job['passes']} passes, each over the set or up to "
        f"{job['budget_s'] / job['passes']:.1f} s of calls; latency over up to {job['latency_calls']}"
        f" calls of tweets. Long texts: {LONG_JOIN} joined headlines (~350 tokens): windows of the student's "
        "max_length (mean of window probabilities); the HF pipeline truncates at 512.",
        "",
        "### Throughput, texts/s (ratio vs the HF pipeline baseline in this run)",
        "",
    ]
    for set_name in ("tweet", "headline", "long"):
        out += [f"**{set_name}**", "", "| model | " + " | ".join(f"batch {b}" for b in sizes) + " |",
                "|---|" + "---:|" * len(sizes)]  # fmt: skip
        for r in ok:
            cells = []
            for b in sizes:
                v = r["throughput"][set_name][b]
                ratio = v / base["throughput"][set_name][b] if base else None
                cells.append(_fmt(v) + (f" ({ratio:.1f}x)" if ratio and r is not base else ""))
            out.append(f"| {r['row']['label']} | " + " | ".join(cells) + " |")
        out.append("")
    out += ["### Latency (tweets), peak RSS, size, load time", "",
            f"| model | b=1 p50 / p95 / p99 ms | b={mb} p50 / p95 / p99 ms | peak RSS MB | size MB | load s | "
            "load avg (1 min) before / after | engine |",
            "|---|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for r in ok:
        lat = r["latency_ms"]
        b1, bm = (" / ".join(_fmt(lat[k][p]) for p in ("p50", "p95", "p99")) for k in ("1", mb))
        load = " / ".join(f"{x:.1f}" for x in r.get("loadavg", [])) or "-"
        out.append(f"| {r['row']['label']} | {b1} | {bm} | {r['peak_rss_bytes'] / 2**20:.0f} | "
                   f"{r['size_bytes'] / 1e6:.1f} | {r['load_s']:.2f} | {load} | {r['engine']} |")  # fmt: skip
    out += ["", "### Targets (issue #4)", "", *targets(report), "", "### Rows", ""]
    out += [f"- {r['row']['label']}: {r['row']['note']}" for r in ok]
    out += [f"- {r['row']['label']}: FAILED: {r['error']}" for r in report["results"] if "error" in r]
    out += [f"- skipped: {s}" for s in report["skipped"]]
    out += ["", END]
    return "\n".join(out) + "\n"


def accuracy_markdown(report: dict, command: str) -> str:
    """The accuracy section: every row's metrics on the labelled splits (``inference.evaluation``)."""
    with_acc = [r for r in report["results"] if "error" not in r and r["accuracy"]]
    names = list(with_acc[0]["accuracy"]) if with_acc else []
    counts = {n: with_acc[0]["accuracy"][n]["n"] for n in names}
    out = [
        ACCURACY_START,
        "## Accuracy on the held-out test splits (sentimon/bench/run.py)",
        "",
        f"- Date: {report['date']}; command: `{command}`",
        "- accuracy / macro-F1 per split, from `inference.evaluation` (the compression report's numbers for the same "
        "bundles). A split with no neutral gold (rotten_tomatoes) is scored negative vs positive by P(pos) >= P(neg).",
        "",
        "| model | " + " | ".join(f"{n} (n={counts[n]:.0f})" for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for r in with_acc:
        acc = r["accuracy"]
        cells = [f"{acc[n]['accuracy']:.3f} / {acc[n]['macro_f1']:.3f}" if n in acc else "-" for n in names]
        out.append(f"| {r['row']['label']} | " + " | ".join(cells) + " |")
    out += ["", *[f"- {r['row']['label']}: {r['row']['note']}" for r in with_acc], "", ACCURACY_END]
    return "\n".join(out) + "\n"


def write_section(path: Path, section: str, start: str = START, end: str = END) -> None:
    """Replace one script's section of BENCHMARKS.md (between its markers), leaving other sections alone."""
    text = path.read_text() if path.is_file() else "# Benchmarks\n\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sets, short budgets, no accuracy (smoke run)")
    p.add_argument("--accuracy-only", action="store_true", help="score the labelled splits only (no timing)")
    p.add_argument(
        "--labelled", action="append", type=Path, help="labelled JSONL/CSV (default: the build's test splits)"
    )
    p.add_argument("--bundle", action="append", default=[], metavar="LABEL=PATH", help="extra bundle row")
    p.add_argument("--teacher", type=Path, help="HF folder for the baseline pipeline")
    p.add_argument("--only", action="append", help="run only rows whose label contains this")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--write", type=Path, help="update this BENCHMARKS.md's sections")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    args = p.parse_args(argv)
    extra = dict(b.split("=", 1) for b in args.bundle)
    report = benchmark(load_settings(), args.quick, args.labelled, extra, args.teacher, args.only, args.threads,
                       timing=not args.accuracy_only)  # fmt: skip
    command = "python -m sentimon.bench.run " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    sections = [] if args.accuracy_only else [(markdown(report, command.strip()), START, END)]
    if report["splits"]:
        sections.append((accuracy_markdown(report, command.strip()), ACCURACY_START, ACCURACY_END))
    for section, start, end in sections:
        print(section)
        if args.write:
            write_section(args.write, section, start, end)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
