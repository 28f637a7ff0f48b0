"""Label names onto the one label space (negative / neutral / positive), shared by the model build's loaders and
``sentimon eval``: a file that the build accepts as training data is read the same way as gold data.

``DEFAULT_LABEL_MAP`` holds the names seen in common sentiment data sets plus the -1 / 0 / 1 polarity ids the
build's source loaders accept; a source's (or ``--label-map``'s) own map wins over it. ``DROP`` marks a label
that is not a sentiment (a row to leave out and count, never to score).
"""

from __future__ import annotations

from typing import Any

from sentimon.inference.bundle import LABELS

LABEL_INDEX = {name: i for i, name in enumerate(LABELS)}
DROP = "__drop__"

# Label names seen in common sentiment data sets; a source's own label_map wins over these.
DEFAULT_LABEL_MAP: dict[str, str] = {
    "negative": "negative", "neg": "negative", "-1": "negative", "bearish": "negative",
    "neutral": "neutral", "neu": "neutral", "0": "neutral",
    "positive": "positive", "pos": "positive", "1": "positive", "bullish": "positive",
    "irrelevant": DROP,
}  # fmt: skip

# Names only (no numeric ids): what ``read_labelled`` accepts besides LABELS indices, whose 0 / 1 / 2 would
# clash with the polarity ids above (a project split file stores 0 = negative).
LABEL_NAMES: dict[str, str] = {k: v for k, v in DEFAULT_LABEL_MAP.items() if not k.lstrip("-").isdigit()}


def lookup(raw: Any, table: dict[str, str]) -> str | None:
    """``raw`` (stripped, exact case first, then lower case) in ``table`` -> a LABELS name or DROP; None when
    absent. A table value None or "drop" means DROP."""
    key = str(raw).strip()
    for candidate in (key, key.lower()):
        if candidate in table:
            value = table[candidate]
            return DROP if value is None or value == "drop" else value
    return None


def parse_label_map(spec: str) -> dict[str, str]:
    """``"0=negative,1=positive,2=neutral,3=drop"`` -> a label map; ValueError naming the bad part."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        raw, sep, value = part.partition("=")
        value = value.strip().lower()
        if not sep or not raw.strip() or value not in (*LABELS, "drop"):
            raise ValueError(f"{part!r} is not RAW=LABEL with LABEL one of {', '.join(LABELS)} or drop")
        out[raw.strip()] = value
    if not out:
        raise ValueError("is empty; give e.g. 0=negative,1=positive,2=neutral")
    return out
