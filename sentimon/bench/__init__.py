"""Benchmarks beside the tests, not inside them. Start at ``sentimon.bench.run`` (``sentimon bench``).

run.py      side-by-side table of every model row (texts/s per batch size and text length, latency
            percentiles, peak RSS, size), ratios vs the HF pipeline baseline, and the accuracy table
            (metrics from sentimon.inference.evaluation); BENCHMARKS.md sections
worker.py   measures ONE row in its own process (so peak RSS is that model's alone)
rows.py     which rows exist: shipped bundles, compression-workspace candidates, the HF teacher, VADER
texts.py    the text sets (tweet / headline / long) and where the labelled test splits live
cascade.py  threshold curve of the static -> student cascade; writes models/cascade/cascade.json
tune.py     batch size / threads / bucket search; writes the best settings to a TOML config
"""
