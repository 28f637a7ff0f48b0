"""Search the runtime knobs for one model on this machine; write the best into a TOML settings file.

    python -m sentimon.bench.tune [--model default] [--config sentimon.toml] [--write]

Grid: ORT intra-op threads x max sequences per ORT call x pad multiple (length buckets) x padded-token cap.
Objective: texts/s on tweet- and headline-length texts scored the way the stream worker calls ``score`` (chunks
of ``stream.max_batch``), geometric mean of the two. The batch-1 p99 latency of the winner is reported beside
it. ``--write`` merges the winning ``inference`` keys into the TOML file (other keys are kept; see
``write_config``); settings read that file by default when it is ``./sentimon.toml`` or given with --config /
SENTIMON_CONFIG.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import itertools
import os
import shlex
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from sentimon import inference
from sentimon.bench.run import machine, write_section
from sentimon.bench.texts import text_sets
from sentimon.core.settings import FLAT_NAMES, Settings, load_settings

GRID = {
    "threads": [1, 2],
    "max_batch": [16, 32, 64, 128],
    "pad_multiple": [1, 8, 16],
    "max_batch_tokens": [2048, 8192],
}
START, END = "<!-- bench:tune:start -->", "<!-- bench:tune:end -->"
KEYS = {name: f"inference_{name}" for name in GRID}


def throughput(scorer, texts: list[str], step: int, budget_s: float) -> float:
    done, t0 = 0, time.perf_counter()
    while done < len(texts) and (done == 0 or time.perf_counter() - t0 < budget_s):
        chunk = texts[done : done + step]
        scorer.score_probs(chunk)
        done += len(chunk)
    return done / (time.perf_counter() - t0)


def search(settings: Settings, model: str, quick: bool = False, say=print) -> dict:
    load_at_start = os.getloadavg()[0]
    sets = text_sets(settings.stack.cache_dir, 256 if quick else 512)
    step = settings.stream.max_batch
    grid = {k: v[:2] for k, v in GRID.items()} if quick else GRID
    results: list[dict[str, Any]] = []
    for values in itertools.product(*grid.values()):
        opts = dict(zip(grid, values, strict=True))
        scorer = inference.load(model, settings.inference, **opts)
        scorer.score_probs(sets["tweet"][:16])  # warm-up
        rates = {name: throughput(scorer, sets[name], step, 1.0 if quick else 3.0) for name in ("tweet", "headline")}
        score = float(np.sqrt(rates["tweet"] * rates["headline"]))
        results.append({"options": opts, "texts_per_s": rates, "objective": score})
        say(f"  {opts}: tweets {rates['tweet']:,.0f}/s, headlines {rates['headline']:,.0f}/s")
    best = max(results, key=lambda r: r["objective"])
    scorer = inference.load(model, settings.inference, **best["options"])
    lat = []
    for text in sets["tweet"][:200]:
        t0 = time.perf_counter()
        scorer.score_probs([text])
        lat.append((time.perf_counter() - t0) * 1000)
    best["batch1_ms"] = dict(zip(("p50", "p95", "p99"), np.percentile(lat, [50, 95, 99]).tolist(), strict=True))
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    loadavg = [load_at_start, os.getloadavg()[0]]
    return {"model": model, "best": best, "tried": results, "date": date, "step": step, "loadavg": loadavg}


def markdown(result: dict, command: str, top: int = 8) -> str:
    ranked = sorted(result["tried"], key=lambda r: -r["objective"])
    best = result["best"]
    lat = best["batch1_ms"]
    out = [
        START,
        "## Runtime tuning (sentimon/bench/tune.py)",
        "",
        f"- Date: {result['date']}; machine: {machine()}; model `{result['model']}`; calls of {result['step']} texts",
        f"- Command: `{command}`",
        f"- Host 1-min load average at start / end: {result['loadavg'][0]:.1f} / {result['loadavg'][1]:.1f}",
        f"- Best: `{best['options']}`; its batch-1 latency p50 / p95 / p99: {lat['p50']:.2f} / {lat['p95']:.2f} / "
        f"{lat['p99']:.2f} ms",
        "",
        "| threads | max_batch | pad_multiple | max_batch_tokens | tweets/s | headlines/s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in ranked[:top]:
        o, t = r["options"], r["texts_per_s"]
        out.append(f"| {o['threads']} | {o['max_batch']} | {o['pad_multiple']} | {o['max_batch_tokens']} | "
                   f"{t['tweet']:,.0f} | {t['headline']:,.0f} |")  # fmt: skip
    out += [
        "",
        f"Top {min(top, len(ranked))} of {len(ranked)} settings tried (geometric mean of the two rates).",
        "",
        END,
    ]
    return "\n".join(out) + "\n"


def write_config(path: Path, options: dict) -> dict:
    """Merge the tuned keys into a TOML settings file, keeping whatever else it holds: into its ``[inference]``
    table when it has one, else as flat ``inference_*`` keys (the spelling of files written before the parts)."""
    current = tomllib.loads(path.read_text()) if path.is_file() else {}
    table = current.get("inference")
    for name, value in options.items():
        if isinstance(table, dict):
            # Both spellings of one setting in a file are a ConfigError on load: the table's wins.
            current.pop(KEYS[name], None)
            table[name] = value
        else:
            current[KEYS[name]] = value
    inference = {k: v for k, v in current.items() if k == "inference" or FLAT_NAMES.get(k, ("",))[0] == "inference"}
    load_settings(None, **copy.deepcopy(inference))  # validates the values before the file is touched
    path.write_text(tomli_w.dumps(current))
    return current


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default")
    p.add_argument("--config", type=Path, default=Path("sentimon.toml"), help="TOML file to write")
    p.add_argument("--write", action="store_true", help="merge the best settings into --config")
    p.add_argument("--quick", action="store_true", help="a 16-point grid with short budgets (smoke run)")
    p.add_argument("--benchmarks", type=Path, help="update this BENCHMARKS.md section")
    args = p.parse_args(argv)
    settings = load_settings()
    result = search(settings, args.model, args.quick)
    best = result["best"]
    rates = best["texts_per_s"]
    print(f"best for {args.model}: {best['options']} -> tweets {rates['tweet']:,.0f}/s, "
          f"headlines {rates['headline']:,.0f}/s, batch-1 p99 {best['batch1_ms']['p99']:.2f} ms")  # fmt: skip
    if args.write:
        write_config(args.config, best["options"])
        print(f"wrote {', '.join(f'inference.{k}' for k in best['options'])} to {args.config}")
    if args.benchmarks:
        command = "python -m sentimon.bench.tune " + " ".join(
            shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
        )
        write_section(args.benchmarks, markdown(result, command.strip()), START, END)
    return result


if __name__ == "__main__":
    main()
